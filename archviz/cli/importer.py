"""``archviz import``: the user's own PyTorch model in, as a spec (torch imported inside the body)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import ArchvizError
from ..render.text import safe
from .common import InputDtypeOpt, InputOpt, console, emit, fail, guarded, input_dtype, parse_input

TargetArg = Annotated[str, typer.Argument(
    help="package.module:factory_or_class, path/to/file.py:Name (called with no arguments),"
         " an instance of torch.nn.Module by the same spelling, or an ONNX file (model.onnx)."
         " A module or file.py is imported, so its code runs: import only code you trust.")]


def _check_path(target: str) -> None:
    """A file named on the command line that is missing or a directory, said before torch loads."""
    onnx = target.lower().endswith(".onnx") or ":" not in target
    where = target if onnx else target.rpartition(":")[0]
    if not onnx and not (where.endswith(".py") or "/" in where or "\\" in where):
        return   # package.module:Name, found by Python's import system
    path = Path(where)
    if path.is_dir():
        what = "an ONNX file" if onnx else "a Python file"
        raise ArchvizError(f"{where}: is a directory, not {what}")
    if onnx and not path.exists() and target.lower().endswith(".onnx"):
        raise ArchvizError(f"{where}: no such file")


@guarded
def import_cmd(
    target: TargetArg,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="Write the spec here (atomically) instead of printing it.")] = None,
    input_size: InputOpt = None,
    dtype_in: InputDtypeOpt = None,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Compile the spec, load the model's weights through the name map and compare"
                         " outputs (max abs difference), parameters and flop_counter MACs; exit 1 if"
                         " any differs.")] = False,
    allow_opaque: Annotated[bool, typer.Option(
        "--allow-opaque", help="Keep what archviz cannot map as `opaque` layers (traced output shape and"
                               " parameter count; not compiled) instead of refusing.")] = False,
) -> None:
    """Import a PyTorch model or an ONNX file as a spec, its layers mapped onto archviz ops.

    This runs code: a package.module or path/to/file.py target is imported by Python (its
    top-level code runs, as `python file.py` would run it) and the Name in it is called. Import
    only models whose code you trust. An ONNX file is read as data; no code in it runs.

    PyTorch: traced with torch.fx (torch.export where fx cannot trace); module paths become
    layer names (state-dict keys stay the same), repeated stages become blocks with repeat.
    The input size defaults to 3x224x224. ONNX (the optional onnx extra): nodes mapped the
    same way, the input size read from the file (--input where it is not fixed there);
    --verify compares with the file run in onnxruntime.

    Examples:

      archviz import torchvision.models:resnet18 -o resnet18.yaml --verify

      archviz import my_models.py:Net --input 3x32x32 -o net.yaml

      archviz import my_models.py:TinyGPT --input 128 --input-dtype int64 --verify

      archviz import my_models.py:Net --allow-opaque -o net.yaml

      archviz import model.onnx -o model.yaml --verify
    """
    _check_path(target)
    if target.lower().endswith(".onnx") or (Path(target).is_file() and ":" not in target):
        _import_onnx(target, output, parse_input(input_size), verify, allow_opaque)
        return
    shape = parse_input(input_size) or (3, 224, 224)
    from ..runtime.importer import from_module, load_target, round_trip

    model = load_target(target)
    imported = from_module(model, shape, source=f"archviz import {target}", allow_opaque=allow_opaque,
                           input_dtype=input_dtype(dtype_in) or "float32")
    _write_and_verify(imported, output, verify, lambda: round_trip(model, imported))



def _import_onnx(target: str, output: Optional[str], shape: Optional[tuple[int, ...]], verify: bool,
                 allow_opaque: bool) -> None:
    from ..runtime.onnx_import import from_onnx, round_trip

    imported = from_onnx(target, shape, allow_opaque=allow_opaque)
    _write_and_verify(imported, output, verify, lambda: round_trip(imported))


def _write_and_verify(imported: Any, output: Optional[str], verify: bool, run: Callable[[], Any]) -> None:
    """Warnings, with --verify the round trip's verdict, and the spec written: only once the round
    trip agrees (exit 1 and nothing written when it differs or cannot run)."""
    err = console(stderr=True)
    for w in imported.warnings:
        err.print(f"[yellow]warning:[/] {safe(w)}", soft_wrap=True)
    if verify:
        if imported.opaque:
            fail("--verify: opaque layers cannot be compiled: " + ", ".join(imported.opaque))
        rt = _round_trip(run)
        mark = "[green]ok[/]" if rt.ok else "[red]DIFFERS[/]"
        err.print(f"round trip {mark}{_rt_text(rt)}", soft_wrap=True)
        if not rt.ok:
            err.print("the spec is not written (the round trip differs)")
            raise typer.Exit(1)
    emit(imported.text, output)


def _round_trip(run: Callable[[], Any]) -> Any:
    """The round trip, its failures as messages: the compiled spec refusing the weights or the
    input is a failed check (exit 1, the spec not written), never an internal error."""
    from ..runtime.mapping import VerifyFailed

    try:
        return run()
    except VerifyFailed as exc:
        fail(exc.format() + "\nthe spec is not written", 1)
    except ArchvizError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch or the runtime refusing the spec: a failed check
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        fail(f"--verify: the round trip failed: {type(exc).__name__}: {first}\nthe spec is not written", 1)


def _rt_text(rt: Any) -> str:
    """The round trip's figures: against the source module (torch) or the file run in a runtime (ONNX)."""
    if hasattr(rt, "runtime"):
        return (f" against {safe(rt.runtime)}: max |output difference| {rt.max_abs_diff:.3g}"
                f" (≤ {rt.tolerance:g}); params {rt.params:,} in the file, {rt.spec_params:,} compiled,"
                f" {rt.analysis_params:,} analysed; MACs {rt.spec_flops // 2:,} compiled (flop_counter),"
                f" {rt.analysis_macs:,} analysed")
    return (f": max |output difference| {rt.max_abs_diff:.3g} (≤ {rt.tolerance:g});"
            f" params {rt.params:,} source, {rt.spec_params:,} compiled, {rt.analysis_params:,} analysed;"
            f" MACs {rt.flops // 2:,} source, {rt.spec_flops // 2:,} compiled, {rt.analysis_macs:,}"
            " analysed" + (f" ({rt.uncounted_macs:,} of them in fused SDPA kernels, which flop_counter"
                           " does not count)" if rt.spec_flops != 2 * rt.analysis_macs else ""))
