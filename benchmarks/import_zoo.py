"""The import round trip over the real torchvision.models and a few timm CNNs (needs torchvision and
timm, e.g. on a GPU machine; runs on the CPU). Prints one row per model: imported or why not, the
max |output difference| against the source model with its own weights, and parameters and MACs
(source, compiled spec). Run:  python benchmarks/import_zoo.py [--input 3x224x224]
Results go in docs/import.md's table."""

from __future__ import annotations

import argparse
import sys

TORCHVISION = ["alexnet", "vgg16", "resnet18", "resnet50", "googlenet", "squeezenet1_0", "mobilenet_v2",
               "densenet121", "efficientnet_b0", "mobilenet_v3_large", "regnet_x_400mf", "shufflenet_v2_x1_0"]
TIMM = ["resnet50", "efficientnet_b0", "mobilenetv3_large_100", "convnext_tiny"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", default="3x224x224")
    shape = tuple(int(v) for v in ap.parse_args().input.split("x"))
    from archviz.errors import ArchvizError
    from archviz.runtime.importer import from_module, round_trip

    makers = []
    try:
        import torchvision.models as tvm
        for n in TORCHVISION:
            kw = {"aux_logits": False, "init_weights": True} if n == "googlenet" else {}
            makers.append((f"torchvision {n}", lambda n=n, kw=kw: getattr(tvm, n)(weights=None, **kw)))
    except ImportError as exc:
        print(f"torchvision not importable: {exc}", file=sys.stderr)
    try:
        import timm
        for n in TIMM:
            makers.append((f"timm {n}", lambda n=n: timm.create_model(n, pretrained=False)))
    except ImportError as exc:
        print(f"timm not importable: {exc}", file=sys.stderr)
    print("| model | imported | max abs diff | params (source / spec) | MACs (source / spec) |")
    print("|---|---|---|---|---|")
    for label, make in makers:
        model = make().eval()
        try:
            imported = from_module(model, shape)
            rt = round_trip(model, imported)
        except ArchvizError as exc:
            print(f"| {label} | no: {str(exc).splitlines()[0][:100]} | | | |")
            continue
        print(f"| {label} | {'yes' if rt.ok else 'DIFFERS'} | {rt.max_abs_diff:.2g} |"
              f" {rt.params:,} / {rt.spec_params:,} | {rt.flops // 2:,} / {rt.spec_flops // 2:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
