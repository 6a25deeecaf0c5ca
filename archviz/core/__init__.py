"""The pure core: graph, analysis, receptive fields, checks, diff, device table."""
