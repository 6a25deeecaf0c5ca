"""Messages a new user meets (issue 10, point 4): a spec named without its suffix, a name with a
dash, `type:` for `op:`, an H×W×C input, bundled specs named by a path one can open."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import archviz
from archviz.cli import app
from archviz.errors import SpecError
from archviz.spec import bundled

runner = CliRunner()
NET = "name: t\ninput: {input}\nlayers:\n  - {{name: {name}, {op}: conv, out: 8, kernel: 3}}\n"


def _net(input: str = "[3, 32, 32]", name: str = "c1", op: str = "op") -> str:
    return NET.format(input=input, name=name, op=op)


def test_a_file_named_without_its_suffix_is_suggested(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cifar.yaml").write_text(_net(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["shapes", "cifar"])
    assert r.exit_code == 2
    assert "cifar: no such file, and no bundled spec of that name" in r.output
    assert "did you mean cifar.yaml?" in r.output and "Traceback" not in r.output


def test_a_dash_in_a_name_is_a_clean_message_with_a_fix() -> None:
    with pytest.raises(SpecError) as exc:
        archviz.loads(_net(name="conv-1"), "t.yaml")
    text = exc.value.format()
    assert "t.yaml:4:12: layer name: expected an identifier (letters, digits, _ and .), got 'conv-1'" in text
    assert "hint: e.g. conv_1" in text and "not 'input'" not in text
    with pytest.raises(SpecError) as exc:
        archviz.loads(_net(name="input"), "t.yaml")
    assert "layer name: 'input' is reserved: it names the network input" in exc.value.format()


def test_type_suggests_op() -> None:
    with pytest.raises(SpecError) as exc:
        archviz.loads(_net(op="type"), "t.yaml")
    text = exc.value.format()
    assert "t.yaml:4:16: c1: unknown key 'type'; the layer's op is given with 'op'" in text
    assert "did you mean 'op: conv'?" in text


def test_an_input_whose_last_entry_looks_like_channels_is_warned_about() -> None:
    a = archviz.analyze(archviz.loads(_net(input="[32, 32, 3]")))
    assert a.warnings[0] == ("input", "input is C×H×W: [32, 32, 3] is read as 32 channels of 32×3;"
                                      " an image of 32×32 with 3 channels is [3, 32, 32]")
    assert archviz.analyze(archviz.loads(_net())).warnings == ()


def test_a_bundled_spec_is_named_by_a_path_that_exists(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = bundled.resolve("alexnet")
    shown = bundled.display("alexnet", path)
    assert Path(shown).resolve() == path.resolve()                 # from the repository root
    monkeypatch.chdir(tmp_path)
    shown = bundled.display("alexnet", path)
    assert Path(shown).is_absolute() and Path(shown) == path.resolve()
    r = runner.invoke(app, ["check", "alexnet"], env={"COLUMNS": "200"})
    where = next(line for line in r.output.splitlines() if "conv1 neurons: claimed" in line)
    file, line, _ = where.strip().split(":", 2)
    assert Path(file).is_file() and "253440" in Path(file).read_text().splitlines()[int(line) - 1]
