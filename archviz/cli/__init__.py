"""The ``archviz`` command line (typer): :mod:`.app` builds the app from the command modules."""

from .app import app, main

__all__ = ["app", "main"]
