"""`archviz bench` end to end on the CPU: tiny batches, few iterations, LeNet-5 and AlexNet."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from archviz.cli import app, reference
from archviz.cli import bench as cli_bench
from archviz.runtime import bench
from tests.conftest import ROOT
from tests.reference_models import REFERENCES

REF = f"{ROOT / 'tests' / 'reference_models.py'}"
FAST = ["--device", "cpu", "--warmup", "1", "--iters", "2"]


@pytest.fixture(autouse=True)
def compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    """archviz.runtime.compile when it is there; until then a stand-in built from the hand-written models."""
    if importlib.util.find_spec("archviz.runtime.compile") is None:
        def stand_in(spec: Any, input_shape: Any = None) -> torch.nn.Module:
            return REFERENCES[Path(spec.path).stem][0]()

        monkeypatch.setattr(cli_bench, "build_module", stand_in)


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["bench", *args])


def forward_flops(stem: str) -> int:
    build, shape = REFERENCES[stem]
    with FlopCounterMode(display=False) as counter:
        build()(torch.randn(1, *shape))
    return counter.get_total_flops()


def test_lenet5_sweep_and_its_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    r = run("lenet5", *FAST, "--batch", "1,2", "--json", str(out))
    assert r.exit_code == 0, r.output
    assert "LeNet-5" in r.output and "images/s" in r.output
    data = json.loads(out.read_text())
    assert data["device"]["kind"] == "cpu" and data["device"]["torch"] == torch.__version__
    assert data["settings"] == {**data["settings"], "batches": [1, 2], "modes": ["infer", "train"],
                                "dtypes": ["fp32"], "iters": 2, "warmup": 1, "timer": "time.perf_counter"}
    assert data["interrupted"] is False
    rows = data["rows"]
    assert [(r["mode"], r["batch"]) for r in rows] == [("infer", 1), ("infer", 2), ("train", 1), ("train", 2)]
    flops = forward_flops("lenet5")  # torch's count, not archviz's
    assert data["flops_per_image"]["LeNet-5"]["infer"] == flops
    for row in rows:
        assert row["status"] == "ok" and row["iters"] == 2
        assert row["ms_q1"] <= row["ms_median"] <= row["ms_q3"]
        seconds = row["ms_median"] / 1e3
        assert row["images_per_s"] == pytest.approx(row["batch"] / seconds)
        per_image = data["flops_per_image"]["LeNet-5"][row["mode"]]
        assert row["tflops"] == pytest.approx(per_image * row["batch"] / seconds / 1e12)
        assert row["peak_pct"] is None and row["memory_bytes"] > 0 and "RSS" in row["memory_kind"]


def test_alexnet_beside_a_hand_written_reference(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    r = run("alexnet", "--device", "cpu", "--warmup", "0", "--iters", "1", "--batch", "1",
            "--reference", f"{REF}:alexnet", "--json", str(out))
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert {row["model"] for row in data["rows"]} == {"AlexNet", "reference"}
    assert [(q["mode"], q["batch"]) for q in data["ratios"]] == [("infer", 1), ("train", 1)]
    for q in data["ratios"]:
        assert q["ratio"] == pytest.approx(q["model_images_per_s"] / q["reference_images_per_s"])
    assert "AlexNet / reference images/s, train fp32 batch 1:" in r.output


def test_layers_add_up_report(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    r = run("lenet5", *FAST, "--batch", "2", "--mode", "train", "--layers", "--json", str(out))
    assert r.exit_code == 0, r.output
    assert "sum of layers" in r.output and "whole step" in r.output
    layers = json.loads(out.read_text())["rows"][0]["layers"]
    names = [t["name"] for t in layers["layers"]]
    assert set(names) >= {"c1", "c3", "c5", "f6", "output", "(loss)", "(SGD step)"}
    total = sum(t["forward_ms"] + t["backward_ms"] for t in layers["layers"])
    assert layers["sum_ms"] == pytest.approx(total)
    assert layers["ratio"] == pytest.approx(layers["sum_ms"] / layers["step_ms"])
    assert f"ratio {layers['ratio']:.3f}" in r.output


def test_plot_is_a_png(tmp_path: Path) -> None:
    png = tmp_path / "tput.png"
    r = run("lenet5", *FAST, "--batch", "1,2", "--mode", "infer", "--plot", str(png))
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unsupported_dtype_and_oom_stay_in_their_rows(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    r = run("lenet5", *FAST, "--mode", "infer", "--batch", f"1,{10**9}", "--dtype", "fp32,tf32",
            "--json", str(out))
    assert r.exit_code == 0, r.output
    rows = json.loads(out.read_text())["rows"]
    assert [(x["dtype"], x["batch"], x["status"]) for x in rows] == [
        ("fp32", 1, "ok"), ("fp32", 10**9, "oom"), ("tf32", 1, "unsupported"), ("tf32", 10**9, "unsupported")]
    assert rows[1]["note"].startswith(f"out of memory at batch {10**9}: needs ")
    assert rows[1]["note"].endswith("refused before allocating")   # the guard, before torch tried


def test_ctrl_c_keeps_and_writes_the_finished_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = bench.run_group
    calls = []

    def interrupted_on_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(bench, "run_group", interrupted_on_second)
    out = tmp_path / "bench.json"
    r = run("lenet5", *FAST, "--batch", "1,2,4", "--json", str(out))
    assert r.exit_code == 130, r.output
    data = json.loads(out.read_text())
    assert data["interrupted"] is True and len(data["rows"]) == 1 and data["rows"][0]["status"] == "ok"
    assert "interrupted: 1 finished row(s) kept" in r.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line_and_exit_2() -> None:
    r = CliRunner().invoke(app, ["bench", "lenet5", "--device", "cuda"])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --device cuda: not available here"), r.output


@pytest.mark.parametrize(("args", "message"), [
    (["--dtype", "fp64"], "--dtype: expected"),
    (["--batch", "0,2"], "--batch: expected"),
    (["--mode", "fast"], "is not one of"),
    (["--iters", "0"], "--iters must be"),
    (["--cuda-graphs"], "--cuda-graphs needs --device cuda"),
    (["-o", "no/such/folder/out.json"], "folder no/such/folder does not exist"),
    (["--json", "no/such/folder/out.json"], "folder no/such/folder does not exist"),   # the old alias
    (["--plot", "out.txt"], "expected a .png, .svg or .pdf"),
    (["--reference", "nosuchfile.py:Net"], "nosuchfile.py: no such file"),
    (["--reference", "justaname"], "expected FILE.py:NAME"),
])
def test_bad_options_exit_2(args: list[str], message: str) -> None:
    r = run("lenet5", *FAST, *args)
    assert r.exit_code == 2 and message in r.output, r.output
    assert "Traceback" not in r.output


def test_reference_forms_and_errors(tmp_path: Path) -> None:
    src = tmp_path / "mine.py"
    src.write_text("from torch import nn\n"
                   "class Net(nn.Module):\n"
                   "    def __init__(self):\n"
                   "        super().__init__()\n"
                   "        self.fc = nn.Linear(4, 2)\n"
                   "def make():\n"
                   "    return Net()\n"
                   "INSTANCE = Net()\n"
                   "NOT_A_MODULE = 3\n"
                   "def broken():\n"
                   "    raise RuntimeError('boom')\n")
    for name in ("Net", "make", "INSTANCE"):
        assert isinstance(reference.load_reference(f"{src}:{name}"), torch.nn.Module)
    for name, message in (("NOT_A_MODULE", "not a torch.nn.Module"), ("broken", "RuntimeError: boom"),
                          ("Nett", "did you mean 'Net'?")):
        with pytest.raises(reference.BadReference, match=message):
            reference.load_reference(f"{src}:{name}")


def test_help_has_examples() -> None:
    r = CliRunner().invoke(app, ["bench", "--help"])
    assert r.exit_code == 0 and "Examples" in r.output and "--reference" in r.output


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_sweep_with_events_and_allocator_memory(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    r = run("alexnet", "--device", "cuda", "--batch", "1,2", "--dtype", "fp32,tf32,bf16", "--warmup", "2",
            "--iters", "3", "--channels-last", "--layers", "--json", str(out))
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["settings"]["timer"] == "CUDA events" and data["device"]["kind"] == "cuda"
    assert data["device"]["cuda"] == torch.version.cuda
    for row in data["rows"]:
        assert row["status"] in ("ok", "unsupported"), row
        if row["status"] == "ok":
            assert row["memory_kind"] == "CUDA allocator peak" and row["memory_bytes"] > 0
            assert "layers" in row


def test_markup_in_names_and_errors_is_shown_as_text(tmp_path: Path) -> None:
    """A reference whose forward raises with '[/x]' in its message: the row keeps the note, the
    JSON is written, nothing is read as rich markup or emoji codes."""
    ref = tmp_path / "bad_ref.py"
    ref.write_text("import torch\n\nclass Bad(torch.nn.Module):\n"
                   "    def forward(self, x):\n"
                   "        raise ValueError('expected shape [batch, channels] got [/x] :x:')\n")
    out = tmp_path / "b.json"
    r = CliRunner().invoke(app, ["bench", "lenet5", "--device", "cpu", "--batch", "1", "--iters", "1",
                                  "--warmup", "1", "--mode", "infer", "--reference", f"{ref}:Bad",
                                  "--json", str(out)], env={"COLUMNS": "250"})
    assert "Traceback" not in r.output and out.exists(), r.output
    assert "[/x] :x:" in r.output


def test_reference_file_imports_its_sibling_modules(tmp_path: Path) -> None:
    (tmp_path / "parts.py").write_text("import torch\nHIDDEN = 8\n")
    ref = tmp_path / "net.py"
    ref.write_text("import torch\nfrom parts import HIDDEN\n\n"
                   "def net():\n"
                   "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1024, 10))\n")
    r = CliRunner().invoke(app, ["bench", "lenet5", "--device", "cpu", "--batch", "1", "--iters", "1",
                                  "--warmup", "1", "--mode", "infer", "--reference", f"{ref}:net"])
    assert r.exit_code == 0, r.output


def test_json_to_a_directory_fails_before_the_sweep(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["bench", "lenet5", "--device", "cpu", "--json", "-o", str(tmp_path)])
    assert r.exit_code == 2 and "is a directory" in r.output
