"""``archviz verify`` and ``archviz export``: the spec compiled into PyTorch.

torch is imported inside the command bodies only (``import archviz.cli`` must stay light).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..render.text import safe
from .choices import (
    ExportFormat,
    LoweringOpt,
    MaxMemoryOpt,
    lowering,
)
from .choices import max_bytes as _max_bytes
from .common import (
    DEFAULT_SPEC,
    FormatOpt,
    InputDtypeOpt,
    InputOpt,
    JsonFlag,
    OutputOpt,
    SpecArg,
    TextFormat,
    WideOpt,
    console,
    emit,
    fail,
    guarded,
    input_dtype,
    load_analysis,
    parse_input,
    show_result,
    text_format,
)

EXPORT_SUFFIXES = {".py": ExportFormat.py, ".pt": ExportFormat.torchscript, ".pth": ExportFormat.torchscript,
                   ".onnx": ExportFormat.onnx}



@guarded
def verify(
    spec: SpecArg = DEFAULT_SPEC,
    input_size: InputOpt = None,
    dtype_in: InputDtypeOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    as_json: JsonFlag = False,
    max_memory: MaxMemoryOpt = None,
    wide: WideOpt = False,
    lowering_text: LoweringOpt = None,
) -> None:
    """Build the PyTorch module; check each layer's real shape and parameters, and the MACs.

    Compared with the analysis: every layer's real output shape and parameters, and the total
    MACs (torch.utils.flop_counter). Runs on the meta device when every op can (no memory
    allocated), else one image on the CPU. Exit 1 on any difference.

    Examples:

      archviz verify                       # the paper's AlexNet

      archviz verify alexnet-torchvision --format json     # --json is the same

      archviz verify my-net.yaml --input 3x64x64

      archviz verify alexnet --lowering lrn=torch       # torch's nn.LocalResponseNorm
    """
    kind = text_format(fmt, output, as_json)
    sp = load_analysis(spec, input_size, dtype=dtype_in).spec   # a bad spec is reported before torch
    from ..render import views
    from ..runtime.compile import verify as run_verify

    result = run_verify(sp, parse_input(input_size), _max_bytes(max_memory), lowering(lowering_text),
                        input_dtype(dtype_in))
    show_result(kind, output, lambda: views.verify_view(result), {
        TextFormat.json: lambda: json.dumps(views.verify_to_dict(result), indent=2,
                                            ensure_ascii=False) + "\n",
        TextFormat.csv: lambda: views.verify_csv(result),
        TextFormat.markdown: lambda: views.verify_markdown(result)}, wide)
    if not result.ok:
        raise typer.Exit(1)


@guarded
def export(
    spec: SpecArg = DEFAULT_SPEC,
    fmt: Annotated[Optional[ExportFormat], typer.Option(
        "--format", "-f", case_sensitive=False,
        help="Default: from -o's suffix (.py, .pt, .onnx), else py.")] = None,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="File to write (atomically); py prints without it.")] = None,
    input_size: InputOpt = None,
    dtype_in: InputDtypeOpt = None,
    max_memory: MaxMemoryOpt = None,
    split_gpus: Annotated[bool, typer.Option(
        "--split-gpus", rich_help_panel="Build",
        help="The spec's GPU split as model-parallel towers, one per GPU of its `gpus:` (py only;"
             " docs/scaling.md).")] = False,
    halo: Annotated[bool, typer.Option(
        "--halo", rich_help_panel="Build",
        help="With --split-gpus: LRN borrows the neighbouring tower's channels (exactly one device's"
             " result).")] = False,
    lowering_text: LoweringOpt = None,
) -> None:
    """Write the compiled model as PyTorch source, TorchScript or ONNX.

    The source is one readable nn.Module class that imports only torch, with the spec's layer
    names and shape comments. ONNX needs the optional onnx and onnxscript packages.

    Examples:

      archviz export alexnet -o alexnet_model.py

      archviz export alexnet-torchvision -o alexnet.pt      # TorchScript, from the suffix

      archviz export lenet5 --format onnx -o lenet5.onnx

      archviz export alexnet --split-gpus -o alexnet_towers.py     # the paper's two towers

      archviz export alexnet --split-gpus --halo -o alexnet_towers.py
    """
    if fmt is None:
        fmt = EXPORT_SUFFIXES.get(Path(output).suffix.lower(), ExportFormat.py) if output else ExportFormat.py
    if halo and not split_gpus:
        fail("--halo applies to --split-gpus only")
    if split_gpus and fmt is not ExportFormat.py:
        fail(f"--split-gpus writes PyTorch source (--format py), not {fmt.value}: the towers run on several"
             " devices, which one TorchScript or ONNX graph of this exporter does not describe")
    if fmt is not ExportFormat.py and not output:
        fail(f"--format {fmt.value} writes a binary file: give one with -o FILE")
    shape = parse_input(input_size)
    # a bad spec (YAML, a field, a shape) fails here, before torch is imported; its file is kept from -o
    sp = load_analysis(spec, input_size, dtype=dtype_in).spec
    from ..runtime import export as ex

    lower = lowering(lowering_text)
    if fmt is ExportFormat.py:
        emit(ex.to_python_split(sp, shape, halo=halo, lowering=lower) if split_gpus
             else ex.to_python(sp, shape, lowering=lower, input_dtype=input_dtype(dtype_in)), output)
        return
    writer = {ExportFormat.torchscript: ex.to_torchscript, ExportFormat.onnx: ex.to_onnx}[fmt]
    data = writer(sp, shape, _max_bytes(max_memory), lowering=lower, input_dtype=input_dtype(dtype_in))
    from ..io import write_atomic

    write_atomic(output or "", data)
    console(stderr=True).print(f"wrote {safe(output or '')} ({len(data):,} bytes, {fmt.value})")
