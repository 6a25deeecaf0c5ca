"""The specs shipped with archviz, addressable by stem (``alexnet``, ``alexnet-1gpu``, ...)."""

from __future__ import annotations

from pathlib import Path

from .errors import SpecError, did_you_mean


def spec_dir() -> Path:
    """``archviz/specs`` in an installed wheel, the repository's ``specs/`` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "specs", here.parent / "specs"):
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    return here / "specs"


def names() -> list[str]:
    return sorted(p.stem for p in spec_dir().glob("*.yaml"))


def resolve(spec: str | Path) -> Path:
    """A path that exists as given, else a bundled spec named by its stem."""
    path = Path(spec)
    if path.exists():
        return path
    text = str(spec)
    stem = text[:-5] if text.endswith(".yaml") else text
    bundled = spec_dir() / f"{Path(stem).name}.yaml"
    if "/" not in text and bundled.exists():
        return bundled
    if "/" in text and Path(stem).name in names() and bundled.exists() and not path.parent.exists():
        return bundled
    known = names()
    hint = did_you_mean(Path(stem).name, known) if known else ""
    raise SpecError(f"{spec}: no such file, and no bundled spec of that name",
                    hint=f"bundled specs: {', '.join(known)}" + (f" ({hint})" if "did you" in hint else ""))


def display(spec: str | Path, path: Path) -> str:
    """How a spec's file is named in messages: as the user gave it, or specs/NAME.yaml if bundled."""
    if Path(spec).exists():
        return str(spec)
    return f"specs/{path.name}"
