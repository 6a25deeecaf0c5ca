"""``archviz verify`` and ``archviz export``: the spec compiled into PyTorch.

torch is imported inside the command bodies only (``import archviz.cli`` must stay light).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Optional

import typer

from ..render.text import safe
from .common import DEFAULT_SPEC, ExportFormat, InputOpt, SpecArg, console, emit, fail, guarded, parse_input

MaxMemoryOpt = Annotated[Optional[str], typer.Option(
    "--max-memory", help="Refuse models whose parameters need more than this (e.g. 8G); default:"
                         " available RAM. Applies where tensors are allocated (a CPU build,"
                         " torchscript/onnx export); meta-device checks and py export allocate nothing.")]


def _shape(shape: Optional[tuple[int, ...]]) -> str:
    from ..ops import fmt_dims

    return "—" if shape is None else fmt_dims(shape)


def _max_bytes(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    from ..runtime.compile import parse_bytes

    return parse_bytes(text)


@guarded
def verify(
    spec: SpecArg = DEFAULT_SPEC,
    input_size: InputOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Build the PyTorch module and check each layer's real shape and parameters, and the MACs.

    Every layer's real output shape and parameter count, and the total MACs
    (torch.utils.flop_counter), are compared with the analysis.

    Runs on the meta device (no memory allocated, any size of model) when every op can; else
    one image on the CPU. Exit 1 on any difference.

    Examples:

      archviz verify                       # the paper's AlexNet

      archviz verify alexnet-torchvision --json

      archviz verify my-net.yaml --input 3x64x64
    """
    from ..runtime.compile import verify as run_verify

    result = run_verify(spec, parse_input(input_size), _max_bytes(max_memory))
    if as_json:
        sys.stdout.write(json.dumps(_to_dict(result), indent=2, ensure_ascii=False) + "\n")
    else:
        _render(result, console())
    if not result.ok:
        raise typer.Exit(1)


def _to_dict(v: Any) -> dict[str, Any]:
    return {
        "name": v.name, "input": list(v.input), "device": v.device, "ok": v.ok, "error": v.error or None,
        "layers": [{"name": c.name, "op": c.op, "shape": list(c.shape),
                    "torch_shape": None if c.real_shape is None else list(c.real_shape),
                    "params": c.params, "torch_params": c.real_params, "ok": c.ok} for c in v.layers],
        "params": v.params, "torch_params": v.real_params,
        "macs": v.macs, "flops": 2 * v.macs, "torch_flops": v.torch_flops, "macs_ok": v.macs_ok,
        "formulas": [{"name": f.name, "op": f.op, "max_rel_error": f.max_rel_error, "tolerance": f.tolerance,
                      "ok": f.ok} for f in v.formulas],
    }


def _render(v: Any, out: Any) -> None:
    from rich import box
    from rich.table import Table

    title = f"{safe(v.name)} · input {_shape(v.input)} · torch on the {v.device} device"
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for col, just in (("", "left"), ("layer", "left"), ("op", "left"), ("output", "left"),
                      ("torch output", "left"), ("params", "right"), ("torch params", "right")):
        table.add_column(col, justify=just, no_wrap=True, min_width=1)  # type: ignore[arg-type]
    for c in v.layers:
        mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
        table.add_row(mark, safe(c.name), c.op, _shape(c.shape), _shape(c.real_shape),
                      f"{c.params:,}", f"{c.real_params:,}")
    out.print(table)
    if v.error:
        out.print(f"[red]✗ torch refused the forward pass:[/] {safe(v.error)}", highlight=False)
    _summary(v, out)


def _summary(v: Any, out: Any) -> None:
    bad = [c.name for c in v.layers if not c.ok]
    ok = "[green]✓[/]" if v.params == v.real_params else "[red]✗[/]"
    out.print(f"{ok} parameters: analysis {v.params:,}, torch {v.real_params:,}")
    ok = "[green]✓[/]" if v.macs_ok else "[red]✗[/]"
    out.print(f"{ok} FLOPs: analysis 2 × {v.macs:,} MACs = {2 * v.macs:,}, torch.utils.flop_counter"
              f" {v.torch_flops:,} (conv and linear only, bias adds not counted)", highlight=False)
    for f in v.formulas:
        ok = "[green]✓[/]" if f.ok else "[red]✗[/]"
        out.print(f"{ok} {safe(f.name)}: torch's {f.op} against the paper's formula written out (spec α):"
                  f" max relative error {f.max_rel_error:.1e} (tolerance {f.tolerance:.0e})", highlight=False)
    if v.ok:
        out.print(f"[green]{len(v.layers)} of {len(v.layers)} layers match torch[/]")
    else:
        out.print(f"[red]{len(v.layers) - len(bad)} of {len(v.layers)} layers match torch"
                  + (f"; differ: {safe(', '.join(bad))}" if bad else "") + "[/]")


@guarded
def export(
    spec: SpecArg = DEFAULT_SPEC,
    fmt: Annotated[ExportFormat, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="py (PyTorch source), torchscript or onnx.")] = ExportFormat.py,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="File to write (atomically); py prints without it.")] = None,
    input_size: InputOpt = None,
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Write the compiled model: readable PyTorch source (one nn.Module class that imports only
    torch, the spec's layer names, shape comments), a TorchScript file, or ONNX (needs the
    optional onnx and onnxscript packages).

    Examples:

      archviz export alexnet -o alexnet_model.py

      archviz export alexnet-torchvision --format torchscript -o alexnet.pt

      archviz export lenet5 --format onnx -o lenet5.onnx
    """
    if fmt is not ExportFormat.py and not output:
        fail(f"--format {fmt.value} writes a binary file: give one with -o FILE")
    from ..runtime import export as ex

    shape = parse_input(input_size)
    if fmt is ExportFormat.py:
        emit(ex.to_python(spec, shape), output)
        return
    writer = {ExportFormat.torchscript: ex.to_torchscript, ExportFormat.onnx: ex.to_onnx}[fmt]
    data = writer(spec, shape, _max_bytes(max_memory))
    from ..io import write_atomic

    write_atomic(output or "", data)
    console(stderr=True).print(f"wrote {safe(output or '')} ({len(data):,} bytes, {fmt.value})")
