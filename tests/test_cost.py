"""`archviz cost` and the pure cost model: hand arithmetic, the fits verdict, the largest batch,
the roofline, the formats and the bad-input paths (the torch oracles: tests/test_cost_torch.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from archviz.cli import app
from archviz.core.analysis import analyze
from archviz.core.cost import GIB, Mode, Optimizer, Settings, estimate, target
from archviz.core.devices import Dtype
from archviz.runtime.probe import device_target
from archviz.spec import load

runner = CliRunner()


def _cost(name: str = "alexnet", gpus: int | None = None, **kw):  # type: ignore[no-untyped-def]
    device = target(kw.pop("device", "gtx580"))
    sp = load(name)
    a = analyze(sp, gpus=gpus)
    return estimate(a, Settings(**kw), device, gpus)


def test_alexnet_parameter_memory_by_hand() -> None:
    c = _cost(gpus=1, batch=128, optimizer=Optimizer.momentum)
    assert c.memory.params == 60_965_224 * 4          # the analysis's parameters, fp32
    # the gradients that exist at the peak (AlexNet's: in norm2's backward, all but conv1's and conv2's)
    assert c.memory.grads == c.memory.params - (34_944 + 307_456) * 4
    assert (c.memory.phase, c.memory.at) == ("backward", "norm2")
    assert c.memory.optimizer == c.memory.params      # one momentum buffer
    assert c.memory.input == 128 * (3 * 227 * 227 * 4 + 8)    # images and int64 labels
    adam = _cost(gpus=1, batch=128, optimizer=Optimizer.adam)
    assert adam.memory.optimizer == 2 * c.memory.params
    infer = _cost(gpus=1, batch=128, mode=Mode.infer)
    assert infer.memory.grads == infer.memory.optimizer == infer.memory.saved == 0


def test_split_halves_the_weights_and_receives_the_crossing_activations() -> None:
    one, two = _cost(gpus=1), _cost(gpus=2)
    assert sum(m.params for m in two.per_gpu) == one.memory.params
    # conv3, fc6, fc7, fc8 read both GPUs: each GPU receives the other half of their inputs
    crossing = (256 * 13 * 13 + 9216 + 4096 + 4096) * 128 * 4 // 2
    assert two.per_gpu[0].cross == crossing
    assert two.peak < one.peak


def test_largest_batch_is_the_edge_of_fitting() -> None:
    c = _cost(gpus=1, batch=128)
    b = c.largest_batch
    assert b is not None and b > 1
    assert _cost(gpus=1, batch=b).fits and not _cost(gpus=1, batch=b + 1).fits
    # the verdict keeps 0.5 GiB for the CUDA context and 5 % of the peak for the allocator
    edge = _cost(gpus=1, batch=b + 1)
    assert edge.kept == 2**29 + -(-edge.peak * 5 // 100)
    assert edge.peak <= edge.capacity < edge.peak + edge.kept
    assert c.capacity == 3 * GIB


def test_roofline_conv1_on_a_gtx580_by_hand() -> None:
    c = _cost(gpus=1, batch=128, mode=Mode.infer)
    conv1 = c.layers[0]
    flops = 2 * 96 * 55 * 55 * 3 * 11 * 11 * 128     # 2 × MACs × batch
    assert conv1.mac_flops_fwd == flops
    moved = (3 * 227 * 227 + 96 * 55 * 55) * 128 * 4 + (96 * 3 * 11 * 11 + 96) * 4
    assert conv1.bytes_fwd == moved
    assert conv1.bound == "compute"
    assert conv1.time_ms == pytest.approx(max(flops / 1.581e12, moved / 192.4e9) * 1e3)
    relu1 = c.layers[1]
    assert relu1.bound == "memory" and relu1.work_fwd == 96 * 55 * 55 * 128


def test_bf16_stores_half_and_keeps_fp32_masters() -> None:
    fp32, bf16 = _cost(gpus=1, dtype=Dtype.fp32), _cost(gpus=1, dtype=Dtype.bf16)
    assert bf16.memory.params == fp32.memory.params
    assert replace(_cost(gpus=1, dtype=Dtype.tf32).memory) == fp32.memory  # tf32 is stored as fp32


def test_cli_table_json_csv_markdown() -> None:
    r = runner.invoke(app, ["cost", "alexnet", "--device", "gtx580", "--epochs", "90", "--images", "1.2M"],
                      env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "fits on GeForce GTX 580 3 GB" in r.output and "90 epochs" in r.output
    assert "tp 2 · dp 1 · pp 1" in r.output and "kept for the CUDA context and the allocator" in r.output
    r = runner.invoke(app, ["cost", "alexnet", "--device", "gtx580", "--gpus", "1", "--batch", "4096",
                            "--format", "json"])
    d = json.loads(r.output)
    assert d["schema_version"] == 1 and d["fits"] is False and d["largest_batch"] > 128
    assert [la["layer"] for la in d["layers"]][:2] == ["conv1", "relu1"]
    r = runner.invoke(app, ["cost", "lenet5", "--format", "csv"])
    assert r.output.splitlines()[0].startswith("layer,op,saved_bytes")
    r = runner.invoke(app, ["cost", "lenet5", "--format", "markdown"])
    assert "| layer | op |" in r.output


@pytest.mark.parametrize(("args", "message"), [
    (["--device", "gtx850"], "did you mean 'gtx580'?"),
    (["--device", "nope"], "known: h100-pcie"),
    (["--batch", "0"], "--batch: expected a positive number of images, got 0"),
    (["--optimizer", "lion"], "'lion' is not one of"),
    (["--dtype", "int8"], "'int8' is not one of"),
    (["--epochs", "90"], "--epochs needs --images"),
    (["--gpus", "3", "--tp", "2"], "--gpus 3 is not divisible by tp · pp = 2"),
    (["--gpus", "3", "--pp", "2"], "--gpus 3 is not divisible by tp · pp = 2"),
    (["--sp"], "--sp splits a model with attention"),
    (["--zero", "4"], "--zero"),
    (["--device", "cpu", "--gpus", "2"], "--device cpu is one device"),
    (["--precision", "mixed", "--dtype", "fp32"], "--precision mixed: needs a 16-bit --dtype"),
    (["--tokens", "1B"], "--tokens: the input is not token ids"),
    (["--tokens", "1B", "--images", "1M"], "--tokens counts a run by itself"),
    (["--epochs", "90", "--images", "lots"], "--images: expected a count"),
])
def test_bad_input_is_located_and_exits_2(args: list[str], message: str) -> None:
    r = runner.invoke(app, ["cost", "alexnet", *args])
    assert r.exit_code == 2, r.output
    assert message in r.output.replace("\n", " ").replace("│", "") or message in r.output
    assert "Traceback" not in r.output


def test_cost_does_not_import_torch() -> None:
    code = ("import sys; from typer.testing import CliRunner; from archviz.cli import app;"
            "r = CliRunner().invoke(app, ['cost', 'alexnet', '--format', 'json']);"
            "assert r.exit_code == 0, r.output; assert 'torch' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_alexnet_check_has_the_papers_memory_and_time_claims() -> None:
    from archviz.core.check import run_checks

    sp = load("alexnet")
    results = {r.what: r for r in run_checks(analyze(sp))}
    one, split = results["memory, one GPU"], results["memory, each GPU of the split"]
    assert one.computed == f"{_cost(gpus=1).peak / GIB:.2f} GiB" and one.ok
    assert split.computed == f"{_cost(gpus=2).peak / GIB:.2f} GiB" and split.ok
    time = results["training time"]
    c = _cost(gpus=2)
    assert c.time is not None
    days = c.time.run_seconds(90, 1_200_000, 128) / 86400
    assert time.computed == f"≥ {days:.2f} days" and time.ok
    # the fraction of two GTX 580s' fp32 peak that 6 and 5 days imply
    flops = 90 * 1_200_000 * c.time.train_flops_per_image
    six, five = (flops / (d * 86400) / (2 * 1.581e12) for d in (6, 5))
    assert f"implies {six:.0%} – {five:.0%}" in time.how


@pytest.mark.parametrize(("claim", "message"), [
    ("memory: {x: {value: 3 GiB, device: gtx850}}", "did you mean 'gtx580'?"),
    ("memory: {x: {value: lots, device: gtx580}}", "expected a memory size such as 3 GiB"),
    ("train_time: {value: 5-6 days, device: gtx580, colour: red}", "unknown key 'colour'"),
    ("train_time: {value: 5-6 days, device: gtx580, batch: 0}", "positive number of images"),
])
def test_bad_cost_claims_are_located(tmp_path, claim: str, message: str) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\ninput: [3, 32, 32]\nlayers:\n  - {name: c, op: conv, out: 4, kernel: 3}\n"
                    f"claims:\n  {claim}\n", encoding="utf-8")
    r = runner.invoke(app, ["check", str(spec)])
    assert r.exit_code == 2, r.output
    assert message in r.output and "net.yaml:" in r.output


def test_bench_shows_the_prediction_beside_the_measurement(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "b.json"
    r = runner.invoke(app, ["bench", "lenet5", "--device", "cpu", "--warmup", "1", "--iters", "2",
                            "--batch", "2", "--mode", "train", "--json", str(out)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "predicted" in r.output and "× roofline" in r.output
    row = json.loads(out.read_text())["rows"][0]
    sp = load("lenet5")
    c = estimate(analyze(sp), Settings(batch=2, optimizer=Optimizer.momentum, torch_device="cpu"),
                 device_target("cpu"), 1)
    assert row["predicted_memory_bytes"] == c.peak
    assert row["predicted_ms"] is None and row["measured_over_predicted_ms"] is None  # no CPU roofline


def test_memory_plot_data_and_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from archviz.render.cost_plot import curve_batches, memory_data

    c = _cost(gpus=1, batch=128)
    d = memory_data(c, [(1, _cost(gpus=1, batch=1).peak), (128, c.peak)])
    parts = dict(d.stacks)
    # one bar per GPU: the breakdown of its peak, the table's words
    assert d.names == ("each GPU",)
    assert sum(v[0] for v in parts.values()) * 2**20 == pytest.approx(c.peak)
    assert parts["saved (activations)"][0] * 2**20 == c.memory.saved
    assert parts["optimizer"][0] * 2**20 == c.memory.optimizer == c.memory.params   # momentum
    split = _cost(gpus=2)
    two = memory_data(split, [(128, split.peak)])
    assert two.names == ("GPU 0", "GPU 1")
    assert [sum(v[i] for _, v in two.stacks) * 2**20 for i in (0, 1)] == \
        pytest.approx([m.total for m in split.per_gpu])
    assert d.capacity == 3 * 1024 and d.largest_batch == c.largest_batch
    assert curve_batches(161, 128) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    out = tmp_path / "m.png"
    r = runner.invoke(app, ["plot", "alexnet", "--kind", "memory", "--device", "gtx580", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = runner.invoke(app, ["plot", "alexnet", "--kind", "memory", "--device", "gtx850", "-o", str(out)])
    assert r.exit_code == 2 and "did you mean 'gtx580'?" in r.output


def test_bench_layer_table_shows_measured_over_roofline() -> None:
    from archviz.render.bench_view import layer_table
    from archviz.render.tables import plain_text
    from archviz.runtime.bench_rows import Case, LayerReport, LayerTime, Row, Status, row_dict

    case = Case(model="net", mode=Mode.train, dtype=Dtype.fp32, batch=4)
    lr = LayerReport(layers=(LayerTime(name="conv1", forward_ms=3.0, backward_ms=5.0),
                             LayerTime(name="relu1", forward_ms=1.0, backward_ms=1.0)), step_ms=10.0)
    row = Row(case=case, status=Status.ok, predicted_layers={"conv1": 2.0}, layers=lr)
    text = plain_text(layer_table(row, lr))
    assert "× roofline" in text
    cells = {line.split("│")[1].strip(): line.split("│")[-2].strip() for line in text.splitlines()
             if line.startswith("│")}
    assert cells == {"conv1": "4.0", "relu1": "—"}   # conv1: 8 ms measured / 2 ms bound; relu1 none
    assert row_dict(row)["layers"]["layers"][0]["predicted_ms"] == 2.0


def test_the_pure_core_names_table_devices_only() -> None:
    """This machine's cpu / cuda are probed by archviz.runtime.probe; the core refuses them, so a
    claim cannot depend on the machine that checks it."""
    import archviz
    from archviz.core.check import run_checks
    from archviz.core.cost import CostError

    for local in ("cpu", "CUDA"):
        with pytest.raises(CostError, match="this machine's"):
            target(local)
    assert device_target("cpu").key == "cpu" and device_target("h100") == target("h100")
    sp = archviz.loads("name: t\ninput: [12]\nlayers:\n  - {name: fc, op: linear, out: 2}\n"
                       "claims:\n  memory:\n    here: {value: 1 GiB, device: cpu}\n", "t.yaml")
    with pytest.raises(archviz.SpecError, match="claims.memory: device 'cpu' is this machine's"):
        run_checks(analyze(sp))
