"""Atomic writes: whole file or nothing, no temporary left behind, permissions kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from archviz.io import OutputError, write_atomic


def test_replaces_and_keeps_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_new_file_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "n.txt", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "n.txt").stat().st_mode & 0o777 == 0o640


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "x.txt", "data")
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_and_directory_target(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        write_atomic(tmp_path / "no" / "x.txt", "data")
    with pytest.raises(OutputError, match="is a directory"):
        write_atomic(tmp_path, "data")


# ---- issue 15: symlinks, special files, '-', and the spec being read ----------------------------
def test_a_symlink_is_followed_and_its_target_replaced(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)   # the link is still a link
    assert real.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "real.txt"]


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "made.txt")
    write_atomic(link, "x")
    assert link.is_symlink() and (tmp_path / "made.txt").read_text() == "x"


@pytest.mark.parametrize("via_link", [False, True])   # a link to a FIFO: as /dev/stdout to a pipe
def test_a_fifo_is_written_into_and_stays_a_fifo(tmp_path: Path, via_link: bool) -> None:
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_atomic(link if via_link else fifo, "through the pipe")
    reader.join(5)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(fifo.stat().st_mode) and link.is_symlink()   # never replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "pipe"]   # no temporary file


def test_dash_is_standard_output(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_atomic("-", "to stdout\n")
    assert capfdbinary.readouterr().out == b"to stdout\n"
    assert list(tmp_path.iterdir()) == []                   # no file named '-'


def test_a_protected_file_is_refused(tmp_path: Path) -> None:
    from archviz.io import protect

    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n")
    from archviz.io import unprotect_all

    protect(spec)
    try:
        link = tmp_path / "alias.yaml"
        link.symlink_to(spec)
        for target in (spec, link):
            with pytest.raises(OutputError, match="the spec being read"):
                write_atomic(target, "overwritten")
        assert spec.read_text() == "name: x\n"
    finally:
        unprotect_all()
    write_atomic(spec, "now allowed")


def test_cli_refuses_to_write_over_its_spec_and_writes_to_dash(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from archviz.cli import app

    spec = tmp_path / "net.yaml"
    text = (Path(__file__).resolve().parents[1] / "specs" / "lenet5.yaml").read_text()
    spec.write_text(text)
    for args in (["shapes", str(spec), "-o", str(spec)], ["draw", str(spec), "-f", "dot", "-o", str(spec)]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and "refusing to write over the spec being read" in r.output, r.output
        assert spec.read_text() == text
    r = CliRunner().invoke(app, ["shapes", str(spec), "-f", "json", "-o", "-"])
    assert r.exit_code == 0 and r.stdout.lstrip().startswith("{")


@pytest.mark.parametrize("which", ["spec", "vs"])
def test_view_refuses_to_write_over_either_spec(tmp_path: Path, which: str) -> None:
    from typer.testing import CliRunner

    from archviz.cli import app

    text = (Path(__file__).resolve().parents[1] / "specs" / "lenet5.yaml").read_text()
    spec, other = tmp_path / "x.html", tmp_path / "y.html"   # specs whose names end in .html
    spec.write_text(text)
    other.write_text(text)
    target = spec if which == "spec" else other
    r = CliRunner().invoke(app, ["view", str(spec), "--vs", str(other), "-o", str(target)])
    assert r.exit_code == 2 and "refusing to write over the spec being read" in r.output, r.output
    assert spec.read_text() == text and other.read_text() == text


# ---- issue 26: a FIFO nobody reads, a symlink loop ------------------------------------------------
def test_a_fifo_without_a_reader_is_refused_not_waited_on_forever(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from archviz import io

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    monkeypatch.setattr(io, "FIFO_WAIT_S", 0.2)
    t = time.monotonic()
    with pytest.raises(OutputError, match="no process is reading this FIFO"):
        write_atomic(fifo, "nobody listens")
    assert time.monotonic() - t < 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_fifo_wait_is_a_short_bounded_constant() -> None:
    from archviz.io import FIFO_WAIT_S

    assert 1 <= FIFO_WAIT_S <= 5


def test_the_cli_exits_2_on_a_fifo_without_a_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from archviz import io
    from archviz.cli import app

    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    monkeypatch.setattr(io, "FIFO_WAIT_S", 0.2)
    r = CliRunner().invoke(app, ["shapes", "lenet5", "-o", str(fifo)])
    assert r.exit_code == 2 and "no process is reading this FIFO" in r.output, r.output


def test_a_symlink_loop_is_refused_and_stays_a_link(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.symlink_to(b)
    b.symlink_to(a)
    for target in (a, b):
        with pytest.raises(OutputError, match="symlink loop"):
            write_atomic(target, "data")
    assert a.is_symlink() and b.is_symlink() and os.readlink(a) == str(b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
