"""Communication in the step's time (archviz.core.cost_comm), against hand computations: ring
all-reduces of Megatron's b·s·h activations over NVLink, the gradients' all-reduce over InfiniBand
between nodes, the pipeline's sends, and the compute of one GPU through the 1F1B schedule."""

from __future__ import annotations

import pytest

import archviz
from archviz.core import cost_comm as comm
from archviz.core.devices import link_for, network_for

S, H, L = 512, 1024, 8


def gpt() -> archviz.Spec:
    return archviz.loads(f"""
name: gptcomm
input: [{S}, {H}]
blocks:
  layer:
    layers:
      - {{name: ln1, op: layernorm}}
      - {{name: attn, op: attention, heads: 16, causal: true}}
      - {{name: add1, op: add, from: [$in, attn]}}
      - {{name: ln2, op: layernorm}}
      - {{name: fc1, op: linear, out: {4 * H}}}
      - {{name: gelu, op: gelu}}
      - {{name: fc2, op: linear, out: {H}}}
      - {{name: add2, op: add, from: [add1, fc2]}}
layers:
  - {{name: h, block: layer, repeat: {L}}}
""")


def test_ring_and_links() -> None:
    assert comm.ring(800.0, 8) == pytest.approx(2 * 7 / 8 * 800)
    assert comm.ring(800.0, 1) == 0.0
    assert link_for("a100").gbs == 300.0 and link_for("h100").gbs == 450.0   # NVLink 3, 4 per direction
    assert network_for("a100").gbs == 25.0 and network_for("h100").gbs == 50.0   # HDR, NDR 200/400 Gb/s
    nv, ib = link_for("a100"), network_for("a100")
    ln = comm.links(nv, ib, tp=8, dp=1, pp=4)
    assert (ln.tp, ln.dp, ln.pp) == (nv, nv, ib)        # dp of 1 spans the node; pp crosses nodes
    ln = comm.links(nv, ib, tp=2, dp=4, pp=1)
    assert (ln.tp, ln.dp) == (nv, nv)                   # tp · dp = 8: one node
    assert comm.links(nv, ib, tp=2, dp=8, pp=1).dp == ib


def test_dp_bytes_by_precision_and_zero() -> None:
    n, dp = 1000, 4
    assert comm.dp_bytes(n, 2, 2, dp, 0, 1) == pytest.approx(2 * 3 / 4 * n * 2)       # bf16 all-reduce
    assert comm.dp_bytes(n, 2, 2, dp, 1, 1) == pytest.approx(2 * 3 / 4 * n * 2)       # RS + AG: same
    assert comm.dp_bytes(n, 4, 4, dp, 0, 1) == pytest.approx(2 * 3 / 4 * n * 4)       # fp32 (amp)
    assert comm.dp_bytes(n, 2, 2, dp, 3, 2) == pytest.approx(3 / 4 * n * (2 + 2 * 2 * 2))   # ZeRO-3
    assert comm.dp_bytes(n, 2, 2, 1, 0, 1) == 0.0


def test_gpt_step_by_hand() -> None:
    """tp 8 × pp 2 × dp 4 = 64 A100s, bf16 (mixed), batch 2, 4 micro-steps."""
    b, m, tp, pp, dp = 2, 4, 8, 2, 4
    c = archviz.cost(gpt(), "a100", gpus=tp * pp * dp, tp=tp, pp=pp, batch=b, grad_accum=m,
                     precision="mixed", optimizer="adam", zero=1)
    t = c.time
    assert t is not None
    # compute: the layers' micro-step (the whole model, one GPU's roofline) split over tp · pp,
    # (m + pp − 1) stage-times (1F1B's bubble)
    whole = sum(lc.time_ms or 0.0 for lc in c.layers)
    assert t.compute_ms == pytest.approx(whole / (tp * pp) * (m + pp - 1))
    bsh = b * S * H * 2
    nvlink, ib = 300e9, 25e9
    # tp: L/pp layers × 4 all-reduces (2 forward, 2 backward) × 2·7/8·bsh, per micro-step
    assert t.link_ms == pytest.approx(L // pp * 4 * 2 * 7 / 8 * bsh / nvlink * 1e3 * m)
    # pp: activations forward and gradients back, over InfiniBand (64 GPUs: 8 nodes)
    assert t.pp_ms == pytest.approx(2 * bsh / ib * 1e3 * m)
    # dp: this GPU's parameters (the first stage's L/pp layers; attention and the MLP split over
    # tp, the layernorms' 2·2H replicated): a bf16 reduce-scatter + all-gather over InfiniBand
    per_layer = (4 * H * H + 4 * H) // tp + (4 * H * H + 4 * H) // tp + (4 * H * H + H) // tp + 4 * H
    n = L // pp * per_layer
    assert t.dp_ms == pytest.approx(2 * 3 / 4 * n * 2 / ib * 1e3)
    assert t.links == {"tp": "NVLink 3 (A100 SXM)", "dp": "InfiniBand HDR", "pp": "InfiniBand HDR"}
    assert t.step_ms == pytest.approx(t.compute_ms + t.link_ms + t.pp_ms + t.dp_ms + t.update_ms)


def test_sequence_parallel_same_volume_full_recompute_more() -> None:
    kw = dict(gpus=8, tp=8, batch=2, precision="mixed")
    base = archviz.cost(gpt(), "h100", **kw).time
    sp = archviz.cost(gpt(), "h100", sp=True, **kw).time
    full = archviz.cost(gpt(), "h100", recompute="full", **kw).time
    assert base is not None and sp is not None and full is not None
    assert sp.link_ms == pytest.approx(base.link_ms)
    assert full.link_ms == pytest.approx(base.link_ms * 6 / 4)
    assert base.link_ms == pytest.approx(L * 4 * 2 * 7 / 8 * (2 * S * H * 2) / 450e9 * 1e3)


def test_gpt3_data_parallel_term() -> None:
    """Issue 24's case: 175B over 512 A100s (tp 8, pp 8, dp 8), ZeRO-1, bf16 gradients."""
    c = archviz.cost("gpt3-175b", "a100", gpus=512, tp=8, pp=8, zero=1, precision="mixed",
                     recompute="selective", batch=1)
    t = c.time
    assert t is not None
    # ≈ 175e9 / 64 parameters here (the first stage holds the embeddings too); 2·7/8 × 2 bytes / 25 GB/s
    n = t.dp_ms / 1e3 * 25e9 / (2 * 7 / 8 * 2)
    assert 175e9 / 64 < n < 175e9 / 64 * 1.1
    assert 350 < t.dp_ms < 450


# ---- Narayanan et al. 2021's 8TP/(nX) as a claim (claims.train_days) ----------------------------

def test_gpt3_train_days_claim_holds() -> None:
    from archviz.core.analysis import analyze
    from archviz.core.check import run_checks
    from archviz.spec import load

    a = analyze(load("gpt3-175b"))
    r = next(r for r in run_checks(a) if r.what.startswith("training days"))
    p = sum(s.params for s in a.layers)
    days = 8 * 300e9 * p / (1024 * 140e12) / 86400          # ≈ 33.8
    assert r.ok and r.computed == f"{days:.1f} days" and 33.5 < days < 34.5
    assert r.claimed == "34 days ±1.5%" and "Narayanan" in r.source


@pytest.mark.parametrize(("claim", "message"), [
    ("{value: 34, tokens: 300G, gpus: 1024}", "missing 'flops_per_gpu'"),
    ("{value: 34, tokens: many, gpus: 1024, flops_per_gpu: 140e12}", "claims.train_days.tokens: expected"),
    ("{value: 34, tokens: 3e11, gpus: 8, flops_per_gpu: 1T, colour: red}", "unknown key 'colour'"),
])
def test_bad_train_days_claims_are_located(tmp_path, claim: str, message: str) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from archviz.cli import app

    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\ninput: [8]\nlayers:\n  - {name: fc, op: linear, out: 4}\n"
                    f"claims:\n  train_days: {claim}\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["check", str(spec)])
    assert r.exit_code == 2, r.output
    assert message in r.output and "net.yaml:" in r.output


def test_train_days_claim_fails_outside_its_tolerance(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from archviz.cli import app

    # 8 × 1e12 tokens × 36 params / (2 GPUs × 1e6 FLOP/s) = 1.44e8 s = 1,666.7 days; 140e12 as YAML text
    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\ninput: [8]\nlayers:\n  - {name: fc, op: linear, out: 4}\n"
                    "claims:\n  train_days: {value: 1600, tol: 1%, tokens: 1e12, gpus: 2,"
                    " flops_per_gpu: 1M}\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["check", str(spec)], env={"COLUMNS": "200"})
    assert r.exit_code == 1, r.output
    assert "1666.7 days" in r.output


# ---- comma lists: one row per configuration ---------------------------------------------------

def test_device_and_batch_lists_give_a_row_each(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import csv
    import json

    from typer.testing import CliRunner

    from archviz.cli import app

    args = ["cost", "lenet5", "--device", "a100,h100", "--batch", "1,8"]
    r = CliRunner().invoke(app, [*args, "-f", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(r.output.splitlines()))
    assert [(x["device"], x["batch"]) for x in rows] == [("a100", "1"), ("a100", "8"), ("h100", "1"),
                                                         ("h100", "8")]
    one = archviz.cost("lenet5", "h100", batch=8)
    assert one.time is not None and float(rows[3]["step_ms"]) == pytest.approx(one.time.step_ms, abs=1e-3)
    out = tmp_path / "c.json"
    assert CliRunner().invoke(app, [*args, "-o", str(out)]).exit_code == 0
    d = json.loads(out.read_text())
    assert len(d) == 4 and d[0]["settings"]["batch"] == 1 and "peak_bytes" in d[0]
    r = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert r.exit_code == 0 and r.output.count("h100") >= 2
    r = CliRunner().invoke(app, ["cost", "lenet5", "--batch", "1,,2"])
    assert r.exit_code == 2 and "empty item" in r.output
