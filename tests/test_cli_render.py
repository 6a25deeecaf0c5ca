"""`archviz draw` and `archviz plot` end to end: every bundled spec in every format, default
file names, Graphviz missing, unwritable paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import bundled_specs
from typer.testing import CliRunner

import archviz
from archviz.cli import app

runner = CliRunner()
MAGIC = {"svg": b"<?xml", "png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "dot": b"// "}


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def written(path: Path, fmt: str) -> bytes:
    data = path.read_bytes()
    assert data.startswith(MAGIC[fmt]), (path, data[:20])
    return data


@pytest.mark.parametrize("name", bundled_specs())
def test_draw_every_bundled_spec_in_every_format(name: str, tmp_path: Path) -> None:
    layers = archviz.load(name).layers
    for fmt in ("svg", "png", "pdf", "dot"):
        out = tmp_path / f"{name}.{fmt}"
        r = invoke("draw", name, "-o", str(out))
        assert r.exit_code == 0, r.output
        data = written(out, fmt)
        if fmt in ("svg", "dot"):
            text = data.decode("utf-8")
            assert all(f">{la.name}<" in text for la in layers)  # every layer's bold name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_draw_split_formats_and_content(tmp_path: Path) -> None:
    for fmt in ("svg", "png", "pdf", "dot"):
        r = invoke("draw", "alexnet", "--split-gpus", "--fold", "-o", str(tmp_path / f"s.{fmt}"))
        assert r.exit_code == 0, r.output
        written(tmp_path / f"s.{fmt}", fmt)
    svg = (tmp_path / "s.svg").read_text(encoding="utf-8")
    assert "GPU 0" in svg and "GPU 1" in svg and "31,064,064 bytes" in svg and "48×55×55" in svg
    assert "rankdir=TB" in (tmp_path / "s.dot").read_text(encoding="utf-8")  # auto: closer to square


def test_draw_default_file_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("draw").exit_code == 0
    written(tmp_path / "alexnet.svg", "svg")
    assert invoke("draw", "--split-gpus").exit_code == 0
    written(tmp_path / "alexnet-split.svg", "svg")
    assert invoke("draw", "lenet5", "--format", "pdf").exit_code == 0
    written(tmp_path / "lenet5.pdf", "pdf")
    assert invoke("draw", "lenet5", "--split-gpus", "--format", "dot").exit_code == 0  # 2 GPUs when absent
    assert "cluster_gpu1" in (tmp_path / "lenet5-split.dot").read_text(encoding="utf-8")
    assert invoke("plot").exit_code == 0
    written(tmp_path / "alexnet-counts.png", "png")
    assert invoke("plot", "--kind", "blocks", "--split-gpus").exit_code == 0
    written(tmp_path / "alexnet-blocks-split.png", "png")


def test_draw_options(tmp_path: Path) -> None:
    r = invoke("draw", "lenet5", "--rankdir", "lr", "-o", str(tmp_path / "l.dot"))
    assert r.exit_code == 0 and "rankdir=LR" in (tmp_path / "l.dot").read_text(encoding="utf-8")
    r = invoke("draw", "lenet5", "-o", str(tmp_path / "x.dot"), "--format", "png")
    assert r.exit_code == 2 and "does not match" in r.output
    r = invoke("draw", "lenet5", "-o", str(tmp_path / "x.gif"))
    assert r.exit_code == 2 and "cannot tell the format" in r.output
    r = invoke("draw", "lenet5", "--rankdir", "XY", "-o", str(tmp_path / "x.svg"))
    assert r.exit_code == 2 and "--rankdir" in r.output
    r = invoke("draw", "no-such-spec")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert not list(tmp_path.glob("x.*"))


def test_draw_without_graphviz_writes_dot_and_exits_1(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no `dot` to be found
    out = tmp_path / "net.png"
    r = invoke("draw", "alexnet", "-o", str(out))
    assert r.exit_code == 1
    assert not out.exists()
    source = (tmp_path / "net.dot").read_text(encoding="utf-8")
    assert source.startswith("// AlexNet") and "conv1" in source
    for hint in ("apt install graphviz", "brew install graphviz", "conda install", "winget install"):
        assert hint in r.output
    assert "Traceback" not in r.output


def test_draw_dot_format_needs_no_graphviz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    r = invoke("draw", "alexnet", "-o", str(tmp_path / "a.dot"))
    assert r.exit_code == 0, r.output
    written(tmp_path / "a.dot", "dot")


def test_unwritable_paths_exit_2(tmp_path: Path) -> None:
    for cmd in (["draw"], ["plot"]):
        r = invoke(*cmd, "alexnet", "-o", str(tmp_path / "missing" / "x.svg"))
        assert r.exit_code == 2 and "cannot write" in r.output and "Traceback" not in r.output
    (tmp_path / "d.svg").mkdir()
    r = invoke("draw", "alexnet", "-o", str(tmp_path / "d.svg"))
    assert r.exit_code == 2 and "directory" in r.output


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folder_exit_2(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        r = invoke("draw", "alexnet", "-o", str(locked / "x.svg"))
        assert r.exit_code == 2 and "cannot write" in r.output
        assert not list(locked.iterdir())
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("kind", ["counts", "blocks"])
@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_plot_kinds_and_formats(kind: str, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"{kind}.{fmt}"
    r = invoke("plot", "alexnet", "--kind", kind, "-o", str(out))
    assert r.exit_code == 0, r.output
    written(out, fmt)


def test_plot_options(tmp_path: Path) -> None:
    r = invoke("plot", "alexnet", "--log", "-o", str(tmp_path / "c.pdf"))
    assert r.exit_code == 0
    written(tmp_path / "c.pdf", "pdf")
    r = invoke("plot", "alexnet", "--kind", "blocks", "--split-gpus", "-o", str(tmp_path / "b.svg"))
    assert r.exit_code == 0
    written(tmp_path / "b.svg", "svg")
    assert invoke("plot", "--kind", "pie").exit_code == 2
    assert invoke("plot", "--split-gpus").exit_code == 2        # applies to blocks only
    assert invoke("plot", "--kind", "blocks", "--log").exit_code == 2
    assert invoke("plot", "-o", str(tmp_path / "x.dot")).exit_code == 2


def test_help_has_examples() -> None:
    for cmd in ("draw", "plot"):
        r = invoke(cmd, "--help")
        assert r.exit_code == 0 and "Examples" in r.output and f"archviz {cmd}" in r.output


def test_format_cannot_disguise_a_png_as_a_jpeg(tmp_path: Path) -> None:
    out = tmp_path / "x.jpg"
    r = CliRunner().invoke(app, ["draw", "lenet5", "-o", str(out), "--format", "png"])
    assert r.exit_code == 2 and "does not match the file name" in r.output and not out.exists()
