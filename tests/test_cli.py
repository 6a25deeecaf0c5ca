"""The `shapes` and `check` commands end to end: formats, options, exit codes, files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archviz.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "160"})


def test_shapes_defaults_to_the_paper_alexnet() -> None:
    r = invoke("shapes")
    assert r.exit_code == 0, r.output
    assert "AlexNet" in r.output and "⌊(227 + 2·0 − 11)/4⌋ + 1 = 55" in r.output
    assert "60,965,224" in r.output


def test_shapes_json_layout() -> None:
    r = invoke("shapes", "alexnet", "--format", "json")
    data = json.loads(r.stdout)
    assert set(data) >= {"name", "input", "layers", "totals", "warnings"}
    layer = data["layers"][0]
    assert set(layer) >= {"name", "op", "inputs", "output", "params", "neurons", "activations",
                          "macs", "formula", "warnings"}
    assert layer["output"] == [96, 55, 55] and layer["inputs"] == ["input"]
    assert layer["macs"] == 96 * 55 * 55 * 3 * 11 * 11
    assert data["totals"]["flops"] == 2 * data["totals"]["macs"]
    assert data["totals"]["params"] == sum(la["params"] for la in data["layers"])


def test_shapes_csv_and_markdown() -> None:
    rows = list(csv.DictReader(io.StringIO(invoke("shapes", "lenet5", "-f", "csv").stdout)))
    assert rows[0]["name"] == "c1" and rows[0]["params"] == str(6 * 1 * 5 * 5 + 6)
    assert rows[-1]["name"] == "total"
    md = invoke("shapes", "lenet5", "-f", "markdown").stdout
    assert md.startswith("## LeNet-5") and "| c1 |" in md


def test_input_224_warns_with_the_exact_quotient_and_fixes() -> None:
    r = invoke("shapes", "alexnet", "--input", "3x224x224", "-f", "json")
    conv1 = json.loads(r.stdout)["layers"][0]
    assert conv1["output"] == [96, 54, 54]
    text = " ".join(conv1["warnings"])
    # (224 - 11)/4 + 1 = 54.25; remainder 213 mod 4 = 1 row/column never read; 223 or 227 exact
    assert "54.25" in text and "last row and column" in text and "223 or 227" in text


def test_strict_turns_warnings_into_exit_1() -> None:
    assert invoke("shapes", "alexnet", "--strict").exit_code == 0
    r = invoke("shapes", "alexnet", "--input", "3x224x224", "--strict")
    assert r.exit_code == 1


def test_bad_input_option_is_exit_2() -> None:
    for bad in ("3x0", "3xabc", "x".join(["2"] * 9)):
        r = invoke("shapes", "alexnet", "--input", bad)
        assert r.exit_code == 2 and "--input" in r.output
    # any rank is read; a conv then refuses a rank it does not take, located in the spec
    r = invoke("shapes", "alexnet", "--input", "3x224")
    assert r.exit_code == 2 and "conv1: conv needs a (C, H, W) input, got (3, 224)" in r.output


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown", "table"])
def test_output_file_written(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"a.{fmt}"
    r = invoke("shapes", "alexnet", "-f", fmt, "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "conv1" in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left behind


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    r = invoke("shapes", "alexnet", "-f", "json", "-o", str(tmp_path / "missing" / "a.json"))
    assert r.exit_code == 2 and "does not exist" in r.output


def test_check_alexnet_reports_the_papers_claims() -> None:
    r = invoke("check", "alexnet", "--json")
    assert r.exit_code == 1  # the paper's 253,440 neurons for conv1 is not 96·55·55
    checks = {c["what"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["params"]["ok"] and checks["params"]["computed"] == "60,965,224"
    assert checks["neurons"]["ok"] and checks["neurons"]["computed"] == f"{659_272:,}"
    assert not checks["conv1 neurons"]["ok"] and checks["conv1 neurons"]["computed"] == "290,400"
    assert checks["conv2 neurons"]["ok"] and checks["conv2 neurons"]["computed"] == f"{256 * 27 * 27:,}"
    assert checks["conv2 kernels"]["computed"] == "5×5×48"
    assert not checks["input_elements"]["ok"]  # 150,528 = 224·224·3, the spec uses 227
    assert checks["conv1 output"]["ok"] and checks["pool5 output"]["ok"]


def test_check_table_and_passing_spec() -> None:
    r = invoke("check", "alexnet-1gpu")
    assert r.exit_code == 0 and "✓" in r.output and "hold" in r.output


def test_specs_lists_bundled() -> None:
    r = invoke("specs")
    assert r.exit_code == 0 and "alexnet-torchvision" in r.output and "lenet5" in r.output


def test_bundled_name_works_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("shapes", "alexnet-1gpu", "-f", "json").exit_code == 0


def test_missing_file_lists_bundled_specs() -> None:
    r = invoke("shapes", "alexnett")
    assert r.exit_code == 2
    assert "no such file" in r.output and "did you mean 'alexnet'" in r.output


def test_non_ascii_digits_are_refused_not_a_traceback() -> None:
    r = invoke("shapes", "alexnet", "--input", "3x²24x224")
    assert r.exit_code == 2 and "--input" in r.output


def test_a_project_folder_named_alexnet_does_not_hide_the_bundled_spec(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "alexnet").mkdir()
    monkeypatch.chdir(tmp_path)
    assert invoke("check").exit_code == 1  # the paper's claims, not "is a directory"
    r = invoke("shapes", "alexnet/")
    assert r.exit_code == 2 and "is a directory" in r.output


def test_output_suffix_picks_the_format(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    assert invoke("shapes", "lenet5", "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())["name"] == "LeNet-5"
    table = tmp_path / "a.txt"
    assert invoke("shapes", "lenet5", "-o", str(table)).exit_code == 0
    assert all(line == line.rstrip() for line in table.read_text().splitlines())


@pytest.mark.parametrize("value", [".nan", ".inf", "-5"])
def test_claims_must_be_finite_and_non_negative(tmp_path: Path, value: str) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text(f"name: c\ninput: [4]\nlayers:\n  - {{name: fc, op: linear, out: 2}}\n"
                    f"claims:\n  params: {value}\n")
    r = invoke("check", str(spec))
    assert r.exit_code == 2 and f"{spec}:6:11: claims.params: expected a number" in r.output


def test_a_neuron_claim_on_a_layer_without_neurons_says_so(tmp_path: Path) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text("name: c\ninput: [4, 6, 6]\nlayers:\n  - {name: r, op: relu}\n"
                    "claims:\n  layer_neurons: {r: 144}\n  layer_activations: {r: 144}\n")
    checks = {c["what"]: c for c in json.loads(invoke("check", str(spec), "--json").stdout)["checks"]}
    assert checks["r neurons"]["how"] == "0: relu layers have no neurons (only conv and linear layers count)"
    assert checks["r activations"]["ok"] and checks["r activations"]["how"] == "4 × 6 × 6 = 144"


# ---- archviz import: directories, and that it runs code (issue 26) -------------------------------
@pytest.mark.parametrize("target, words", [("x.onnx", "x.onnx: is a directory, not an ONNX file"),
                                           ("m.py:Net", "m.py: is a directory, not a Python file")])
def test_import_of_a_directory_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       target: str, words: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / target.split(":")[0]).mkdir()
    r = invoke("import", target)
    assert r.exit_code == 2 and words in r.output and "no such file" not in r.output, r.output


def test_import_says_that_it_runs_the_code_it_imports() -> None:
    r = runner.invoke(app, ["import", "--help"], env={"COLUMNS": "200"})
    text = " ".join(r.output.split())
    assert "This runs code" in text and "import only models whose code you trust" in text.lower()
    doc = " ".join((Path(__file__).resolve().parents[1] / "docs" / "import.md").read_text().split())
    assert "**This runs code.**" in doc and "top-level code runs" in doc
