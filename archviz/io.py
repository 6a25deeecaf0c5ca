"""File output as a careful tool does it: a new path or a regular file is written atomically (a
temporary file beside the target, then a rename over it); a symlink is followed and its target
replaced atomically (a symlink loop is refused, never replaced); an existing special file (a FIFO,
/dev/null, /dev/stdout) is written into, never replaced, and a FIFO that no process reads is
refused after :data:`FIFO_WAIT_S` seconds instead of blocking forever; ``-`` means standard
output; a file registered with :func:`protect` (the spec a command is reading) is never
overwritten.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time
from pathlib import Path

from .errors import ArchvizError

STDOUT = "-"
FIFO_WAIT_S = 3.0   # how long -o waits for a process to open a FIFO for reading
_PROTECTED: set[tuple[int, int]] = set()   # (device, inode) of files that must not be written


class OutputError(ArchvizError):
    """An output file that cannot be written (missing folder, no permission, ...)."""


def protect(path: str | Path) -> None:
    """Refuse, from now on in this process, to write over ``path`` (the CLI registers the spec it
    reads, so ``archviz shapes x.yaml -o x.yaml`` cannot destroy the spec). Missing paths are ignored."""
    try:
        st = os.stat(path)
    except OSError:
        return
    _PROTECTED.add((st.st_dev, st.st_ino))


def unprotect_all() -> None:
    """Forget every :func:`protect` (the CLI does at the end of each command)."""
    _PROTECTED.clear()


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    ``-`` writes to standard output. A symlink is followed (its target is replaced, the link
    stays); a FIFO or device is opened and written into, since replacing it would turn a
    machine-wide special file into a plain one."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if str(path) == STDOUT:
        sys.stdout.flush()
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        return Path(STDOUT)
    shown = Path(path)
    try:
        st = os.stat(shown)   # symlinks followed
    except OSError as exc:
        if exc.errno == errno.ELOOP:   # a link loop: writing would replace the link with a file
            raise OutputError(f"{shown}: cannot write: too many levels of symbolic links"
                              " (a symlink loop)") from None
        st = None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{shown}: cannot write: it is a directory")
        if (st.st_dev, st.st_ino) in _PROTECTED:
            raise OutputError(f"{shown}: refusing to write over the spec being read")
        if not stat.S_ISREG(st.st_mode):
            # opened by the name given: /dev/stdout links to /proc/self/fd/1, whose target
            # (pipe:[…]) is no path at all
            return _write_into(shown, raw, fifo=stat.S_ISFIFO(st.st_mode))
    target = Path(os.path.realpath(shown)) if shown.is_symlink() else shown
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{shown}: cannot write: folder {folder} does not exist")
    import tempfile  # here: every command imports this module (protect), few write a file

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException as exc:  # Ctrl-C included: never leave the temporary file behind
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{shown}: cannot write: {exc.strerror}") from None
        raise
    return shown


def _write_into(shown: Path, raw: bytes, fifo: bool = False) -> Path:
    """A FIFO or a device: open it as it is (no create, no truncate, no rename) and write."""
    try:
        fd = _open_fifo(shown) if fifo else os.open(shown, os.O_WRONLY)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write: {exc.strerror}") from None
    return shown


def _open_fifo(shown: Path) -> int:
    """Open a FIFO for writing without blocking forever: a plain open waits for a reader that may
    never come. Non-blocking opens fail with ENXIO while nobody reads; retried for
    :data:`FIFO_WAIT_S` seconds, then refused. Once open, writes block again as usual."""
    deadline = time.monotonic() + FIFO_WAIT_S
    while True:
        try:
            fd = os.open(shown, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            if time.monotonic() >= deadline:
                raise OutputError(f"{shown}: cannot write: no process is reading this FIFO"
                                  f" (waited {FIFO_WAIT_S:g} s)") from None
            time.sleep(0.05)
    os.set_blocking(fd, True)
    return fd


def _mode_for(target: Path) -> int:
    """The existing file's permissions, else what a plain open() would give (0o666 less umask)."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
