"""``--recompute``'s peak against PyTorch's MemTracker (tests/memtracker_oracle.py) on a stack of
GPT blocks run with ``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)`` around each
block copy: in backward the checkpoint re-runs the block's forward, so one layer's activations
are alive again beside the checkpoints (the block inputs) while that layer's backward runs."""

from __future__ import annotations

from typing import Any

import pytest

import archviz
from archviz.core.analysis import analyze
from archviz.core.cost import Settings, estimate, target
from archviz.core.cost_layout import Recompute
from archviz.spec import INPUT

# measured: −0.32 %, −0.85 %, +0.79 % over (S, D, heads, layers, batch) = (64, 64, 4, 4, 4),
# (128, 64, 4, 3, 2), (32, 128, 8, 6, 4); what is left is the recomputed forward's own working
# tensors and attention's backward gradients of the S×S scores, which the walk does not count
TOLERANCE = 0.02


def blocks(s: int, d: int, heads: int, layers: int, p: float = 0.1) -> archviz.Spec:
    """GPT blocks (tests/test_cost_megatron.py's), then a classifier head, so that the step's loss
    is the oracle's cross-entropy over one label a sample."""
    return archviz.loads(blocks_yaml(s, d, heads, layers, p))


def blocks_yaml(s: int, d: int, heads: int, layers: int, p: float = 0.1) -> str:
    return (f"""
name: gptblocks
input: [{s}, {d}]
blocks:
  layer:
    layers:
      - {{name: ln1, op: layernorm}}
      - {{name: attn, op: attention, heads: {heads}, causal: true, dropout: {p}}}
      - {{name: drop1, op: dropout, p: {p}}}
      - {{name: add1, op: add, from: [$in, drop1]}}
      - {{name: ln2, op: layernorm}}
      - {{name: fc1, op: linear, out: {4 * d}}}
      - {{name: gelu, op: gelu}}
      - {{name: fc2, op: linear, out: {d}}}
      - {{name: drop2, op: dropout, p: {p}}}
      - {{name: add2, op: add, from: [add1, drop2]}}
layers:
  - {{name: h, block: layer, repeat: {layers}}}
  - {{name: flat, op: flatten}}
  - {{name: head, op: linear, out: 10}}
""")


def checkpointed(module: Any, analysis: Any) -> Any:
    """The compiled module's layers run in order, each block copy under non-reentrant
    ``torch.utils.checkpoint`` (Megatron's full recompute: only the copy's input is kept)."""
    import torch
    from torch.utils.checkpoint import checkpoint

    def copy(st: Any) -> Any:
        o = st.origin
        return (o.use, o.index) if o is not None and o.count > 1 else None

    runs: list[list[Any]] = []
    for st in analysis.layers:
        if runs and copy(st) is not None and copy(runs[-1][0]) == copy(st):
            runs[-1].append(st)
        else:
            runs.append([st])

    def run(layers: list[Any], outer: list[str], *xs: Any) -> Any:
        v = dict(zip(outer, xs, strict=True))
        for st in layers:
            args = [v[i] for i in st.inputs]
            v[st.name] = module.get_submodule(st.name)(args if len(args) > 1 else args[0])
        return v[layers[-1].name]

    class Checkpointed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: Any) -> Any:
            v = {INPUT: x}
            for layers in runs:
                names = {st.name for st in layers}
                outer = list(dict.fromkeys(i for st in layers for i in st.inputs if i not in names))
                args = [v[i] for i in outer]
                v[layers[-1].name] = (checkpoint(run, layers, outer, *args, use_reentrant=False)
                                      if copy(layers[0]) is not None else run(layers, outer, *args))
            return v[analysis.layers[-1].name]

    return Checkpointed()


def measured(sp: archviz.Spec, batch: int) -> int:
    torch = pytest.importorskip("torch")
    from memtracker_oracle import track
    from torch._subclasses.fake_tensor import FakeTensorMode

    from archviz.runtime.compile import compile_graph

    a = analyze(sp, gpus=1)
    with FakeTensorMode():
        torch.manual_seed(0)
        model = checkpointed(compile_graph(a.graph, a).train(), a)
        return track(model, a.input, 10, batch, "fp32", "momentum").total


def cost(sp: archviz.Spec, batch: int, rc: Recompute) -> Any:
    s = Settings(batch=batch, torch_device="cpu", recompute=rc)
    return estimate(analyze(sp, gpus=1), s, target("h100"), 1)


SHAPES = [(64, 64, 4, 4, 4), pytest.param(128, 64, 4, 3, 2, marks=pytest.mark.slow),
          pytest.param(32, 128, 8, 6, 4, marks=pytest.mark.slow)]


@pytest.mark.parametrize(("s", "d", "heads", "layers", "batch"), SHAPES)
def test_full_recompute_peak_within_2_percent_of_memtracker(s: int, d: int, heads: int, layers: int,
                                                            batch: int) -> None:
    sp = blocks(s, d, heads, layers)
    got, c = measured(sp, batch), cost(sp, batch, Recompute.full)
    assert abs(c.peak / got - 1) <= TOLERANCE, (c.peak, got, c.memory)
    # the peak is in the first block's backward, with its activations recomputed: the block's
    # saved bytes without recomputation, less its input (the checkpoint, kept all along)
    assert (c.memory.phase, c.memory.at.split(".")[0:2]) == ("backward", ["h", "0"])
    plain = cost(sp, batch, Recompute.none)
    from archviz.core.cost import saved_bytes

    one = saved_bytes(analyze(sp, gpus=1), Settings(batch=batch, torch_device="cpu"))
    block = sum(v for k, v in one.items() if k.startswith("h.0."))
    assert 0 < c.memory.recompute <= block - batch * s * d * 4
    assert c.peak < plain.peak


def test_selective_recompute_holds_one_layers_square_tensors_again() -> None:
    """Selective: in the attention layer's backward its S×S tensors (probabilities, dropout mask,
    dropped probabilities: fp32 on the CPU) are recomputed and alive again."""
    s, d, heads, layers, batch = 64, 64, 4, 4, 4
    c = cost(blocks(s, d, heads, layers), batch, Recompute.selective)
    assert (c.memory.phase, c.memory.at) == ("backward", "h.3.attn")
    assert c.memory.recompute == 3 * batch * heads * s * s * 4


def test_recompute_is_named_in_json_and_table(tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from archviz.cli import app

    runner = CliRunner()
    spec = tmp_path / "blocks.yaml"
    spec.write_text(blocks_yaml(64, 64, 4, 4))
    r = runner.invoke(app, ["cost", str(spec), "--batch", "4", "--recompute", "full",
                            "--precision", "mixed", "--dtype", "bf16", "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    m = d["memory"]
    assert m["recompute"] > 0 and m["total"] == m["model_states"] + m["buffers"] + m["input"] + m["saved"] \
        + m["recompute"] + m["transient"] + m["kv_cache"]
    r = runner.invoke(app, ["cost", str(spec), "--batch", "4", "--recompute", "full"], terminal_width=200)
    assert r.exit_code == 0 and "recompute" in r.output, r.output
