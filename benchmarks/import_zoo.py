"""`archviz import --verify` over torchvision's classification and segmentation models (a benchmark,
not CI: CI keeps the hand-written references of tests/reference_*.py).

Each model is built with random weights, imported (torch.fx, torch.export where fx cannot trace),
and with --verify compiled, loaded with the model's own weights and compared on a random input.
Prints a markdown table: model, layers, blocks, params equal, outputs equal (max |difference|),
opaque layers, seconds. Swin V2 and MaxViT are imported with --allow-opaque and not verified;
ViT and Swin (V1) verify. torchvision needs its own torch (a separate venv, see docs/import.md), e.g.

    python3 -m venv /tmp/zoo && /tmp/zoo/bin/pip install torch torchvision pyyaml rich typer
    PYTHONPATH=. /tmp/zoo/bin/python benchmarks/import_zoo.py [--input 3x96x96] [--only resnet]

Results go in docs/import.md's table.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

OPAQUE_OK = ("swin_v2", "maxvit_")                  # imported with --allow-opaque, not verified
SEGMENTATION = ("fcn_resnet50", "deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large",
                "lraspp_mobilenet_v3_large")
# the models' own size limits: Inception needs 75×75 at least, MaxViT a multiple of its windows
MIN_INPUT = {"inception_v3": 96, "googlenet": 64, "maxvit_t": 224}
FIXED_INPUT = ("vit_", "maxvit_")                   # a fixed image size (position embeddings, windows)


def models(only: str) -> list[tuple[str, str, Any]]:
    """(name, kind, maker) for every torchvision classification and segmentation model."""
    import torchvision.models as tvm

    out = []
    for name in tvm.list_models(module=tvm):
        if only and not re.search(only, name):
            continue
        kw = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
        out.append((name, "classification", lambda n=name, kw=kw: tvm.get_model(n, weights=None, **kw)))
    for name in SEGMENTATION:
        if not only or re.search(only, name):
            out.append((name, "segmentation", lambda n=name: _segmentation(n)))
    return out


def _segmentation(name: str) -> Any:
    import torch
    import torchvision.models.segmentation as seg

    class Out(torch.nn.Module):
        """The model's `out` entry (its forward returns an OrderedDict); aux heads off."""

        def __init__(self) -> None:
            super().__init__()
            self.model = getattr(seg, name)(weights=None, weights_backbone=None, num_classes=21,
                                            **({} if name.startswith("lraspp") else {"aux_loss": False}))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)["out"]

    return Out()


def row(name: str, make: Any, size: int) -> str:
    import torch

    from archviz.core.analysis import analyze
    from archviz.errors import ArchvizError
    from archviz.runtime.importer import from_module, round_trip

    opaque_ok = name.startswith(OPAQUE_OK)
    if name.startswith(FIXED_INPUT):
        size = 224
    size = max(size, MIN_INPUT.get(name, 0))
    torch.manual_seed(0)
    start = time.perf_counter()
    try:
        model = make().eval()
        imported = from_module(model, (3, size, size), allow_opaque=opaque_ok)
        layers = len(analyze(imported.spec).layers)
        uses = imported.text.split("\nlayers:\n", 1)[-1]
        blocks = f"{uses.count(' block: ')} ({uses.count(' repeat: ')})"
        rt = None if opaque_ok else round_trip(model, imported)
    except ArchvizError as exc:
        first = str(exc.format()).splitlines()[0][:140].replace("|", "/")
        return f"| {name} | {size} | no: {first} | | | | | {time.perf_counter() - start:.1f} |"
    seconds = time.perf_counter() - start
    if rt is None:   # the totals still hold: an opaque layer carries its traced parameter count
        source = sum(p.numel() for p in model.parameters())
        analysed = analyze(imported.spec).totals.params
        params = f"yes (analysed, {analysed:,})" if analysed == source else f"NO {source:,} / {analysed:,}"
        outputs = "not verified"
    else:
        params = "yes" if rt.params == rt.spec_params == rt.analysis_params else \
            f"NO {rt.params:,} / {rt.spec_params:,} / {rt.analysis_params:,}"
        outputs = f"{'yes' if rt.max_abs_diff <= rt.tolerance else 'NO'} ({rt.max_abs_diff:.1g})"
        if not rt.ok:   # MACs of source (less its constant work) / compiled / analysis disagree
            outputs += f"; MACs {rt.flops // 2:,} / {rt.spec_flops // 2:,} / {rt.analysis_macs:,}"
        elif rt.spec_flops != 2 * rt.analysis_macs:   # equal but for what flop_counter cannot see
            outputs += f"; MACs equal but SDPA's {rt.uncounted_macs:,}, which flop_counter does not count"
    return (f"| {name} | {size} | {layers} | {blocks} | {params} | {outputs} | {len(imported.opaque)} |"
            f" {seconds:.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", default="3x96x96", help="CxHxW; models with a fixed size use their own")
    ap.add_argument("--only", default="", help="a regular expression on the model names")
    args = ap.parse_args()
    size = int(args.input.split("x")[-1])
    import torch

    torch.set_num_threads(1)
    print("| model | input | layers | block uses (with repeat) | params equal |"
          " outputs equal (max abs diff) |"
          " opaque | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name, _, make in models(args.only):
        print(row(name, make, size), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
