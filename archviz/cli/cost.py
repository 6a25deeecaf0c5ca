"""``archviz cost``: will it fit, and how long will a step take (pure Python: no torch unless
``--device cuda`` asks which GPU this is)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from .common import (
    DEFAULT_SPEC,
    InputDtypeOpt,
    InputOpt,
    LoweringOpt,
    OutputOpt,
    SpecArg,
    TextFormat,
    console,
    emit,
    guarded,
    load_analysis,
    lowering,
    text_format,
)


@guarded
def cost(
    spec: SpecArg = DEFAULT_SPEC,
    device: Annotated[str, typer.Option(
        "--device", "-d", help="A device of the table (gtx580, h100, a100, t4, …) or cpu / cuda for"
                               " the local one.")] = "h100",
    gpus: Annotated[Optional[int], typer.Option(
        "--gpus", min=1, help="Split over N GPUs by channels (overrides the spec's gpus:).")] = None,
    batch: Annotated[int, typer.Option("--batch", "-b", help="Images per step.")] = 128,
    mode: Annotated[str, typer.Option(
        "--mode", help="train (forward, backward, update) or infer.")] = "train",
    dtype: Annotated[str, typer.Option(
        "--dtype", help="fp32, tf32 (stored as fp32), bf16 or fp16 (autocast: fp32 master weights).")
    ] = "fp32",
    optimizer: Annotated[str, typer.Option(
        "--optimizer", help="sgd, momentum (one state per parameter) or adam (two).")] = "momentum",
    epochs: Annotated[Optional[float], typer.Option(
        "--epochs", help="With --images: a whole run's time.")] = None,
    images: Annotated[Optional[str], typer.Option("--images", help="Images per epoch, e.g. 1.2M.")] = None,
    fmt: Annotated[Optional[TextFormat], typer.Option(
        "--format", "-f", case_sensitive=False,
        help="[default: table, or from -o's suffix: .json, .csv, .md]")] = None,
    input_size: InputOpt = None,
    dtype_in: InputDtypeOpt = None,
    output: OutputOpt = None,
    lowering_text: LoweringOpt = None,
) -> None:
    """Memory per layer and in total (parameters, gradients, optimizer state, what autograd saves
    for backward, the working set) and a roofline lower bound on the step time; says whether it
    fits on the device and the largest batch that does.

    Examples:

      archviz cost alexnet --device gtx580 --gpus 1       # the paper's net on one 3 GB card

      archviz cost alexnet --device gtx580 --epochs 90 --images 1.2M

      archviz cost resnet50 --device a100 --dtype bf16 --optimizer adam --format json

      archviz cost alexnet --lowering lrn=torch        # as torch's nn.LocalResponseNorm saves
    """
    from ..core.cost import CostError, Mode, Optimizer, Settings, estimate
    from ..core.devices import Dtype
    from ..errors import did_you_mean
    from ..render import cost_view
    from ..runtime.probe import device_target

    def choice(enum: Any, value: str, flag: str) -> Any:
        try:
            return enum(value.lower())
        except ValueError:
            valid = [e.value for e in enum]
            raise CostError(f"{flag}: unknown {flag.strip('-')} '{value}'",
                            did_you_mean(value, valid)) from None

    settings = Settings(mode=choice(Mode, mode, "--mode"), batch=batch, dtype=choice(Dtype, dtype, "--dtype"),
                        optimizer=choice(Optimizer, optimizer, "--optimizer"),
                        torch_device="cpu" if device.lower() == "cpu" else "cuda",
                        lowering=lowering(lowering_text))
    where = device_target(device)
    n_images = _run_images(epochs, images)
    c = estimate(load_analysis(spec, input_size, gpus, dtype_in), settings, where, gpus)
    extra: dict[str, Any] = {}
    run = ""
    if epochs is not None and n_images is not None:
        if c.time is None:
            run = f"no time model for {where.name}: --epochs ignored"
        else:
            secs = c.time.run_seconds(epochs, n_images, batch)
            extra["run"] = {"epochs": epochs, "images": n_images, "seconds": secs, "days": secs / 86400}
            run = (f"{epochs:g} epochs of {n_images:,} images ≥ {secs / 3600:.1f} h"
                   f" ({secs / 86400:.2f} days) on {c.gpus} × {where.name}")
    kind = text_format(fmt, output)
    if kind is TextFormat.table:
        from ..render.tables import plain_text

        view = cost_view.cost_view(c, run)
        if output:
            emit(plain_text(view, width=160), output)
        else:
            console().print(view)
    else:
        emit(cost_view.WRITERS[kind.value](c, extra), output)


def _run_images(epochs: Optional[float], images: Optional[str]) -> Optional[int]:
    """``--images`` as a number, checked together with ``--epochs`` (a run is epochs × images)."""
    from ..core.cost import CostError, parse_images

    if (epochs is None) != (images is None):
        raise CostError("--epochs and --images go together (a run is epochs × images)")
    if epochs is not None and epochs <= 0:
        raise CostError(f"--epochs: expected a positive number, got {epochs:g}")
    return parse_images(images) if images is not None else None
