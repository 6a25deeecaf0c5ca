"""The specs shipped with archviz, addressable by stem (``alexnet``, ``alexnet-1gpu``, ...)."""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError, did_you_mean


def spec_dir() -> Path:
    """``archviz/data`` in an installed wheel, the repository's ``specs/`` in a checkout."""
    package = Path(__file__).resolve().parent.parent  # archviz/
    for candidate in (package / "data", package.parent / "specs"):
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    return package / "data"


def names() -> list[str]:
    return sorted(p.stem for p in spec_dir().glob("*.yaml"))


def resolve(spec: str | Path) -> Path:
    """A file that exists as given, else a bundled spec named by its stem, else a directory.

    A folder named like a bundled spec (a project's ``alexnet/``) does not hide the bundled spec:
    only a path that looks like one (with a ``/`` or a ``.yaml`` suffix) names a folder.
    """
    path = Path(spec)
    if path.is_file():
        return path
    text = str(spec)
    looks_like_path = "/" in text or text.endswith((".yaml", ".yml"))
    bundled = spec_dir() / f"{path.stem if text.endswith('.yaml') else path.name}.yaml"
    if bundled.exists() and (not looks_like_path or not path.parent.exists()):
        return bundled
    if path.exists():
        return path
    for suffix in (".yaml", ".yml"):
        beside = Path(f"{text}{suffix}")
        if beside.is_file():
            raise SpecError(f"{spec}: no such file, and no bundled spec of that name",
                            hint=f"did you mean {beside}?")
    known = names()
    hint = did_you_mean(path.stem, known) if known else ""
    raise SpecError(f"{spec}: no such file, and no bundled spec of that name",
                    hint=f"bundled specs: {', '.join(known)}" + (f" ({hint})" if "did you" in hint else ""))


def display(spec: str | Path, path: Path) -> str:
    """How a spec's file is named in messages: as the user gave it; a bundled spec by the path
    the user can open (relative to the current directory when it is below it, else absolute)."""
    if path == Path(spec):
        return str(spec)
    real = path.resolve()
    try:
        return str(real.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(real)
