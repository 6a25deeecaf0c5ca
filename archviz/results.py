"""What the public API returns: the core's results with ``to_dict()`` and rich display in
Jupyter (``_repr_markdown_`` for analyses, checks and diffs, ``_repr_svg_`` for diagrams).

Each result is the core's own value (a :class:`Report` *is* an :class:`Analysis`), so anything
that takes the one takes the other. The render layer is imported inside the methods only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from .core.analysis import Analysis
from .core.check import CheckResult
from .core.diff import Diff

if TYPE_CHECKING:  # pragma: no cover
    import graphviz


def _copy(cls: type, value: Any) -> Any:
    return cls(**{f.name: getattr(value, f.name) for f in fields(value)})


@dataclass(frozen=True, repr=False)
class Report(Analysis):
    """An :class:`Analysis` that shows itself in a notebook and turns into the CLI's JSON."""

    def __repr__(self) -> str:
        t = self.totals
        return (f"<archviz.Report {self.name!r}: input {self.input}, {len(self.layers)} layers,"
                f" params {t.params:,}, MACs {t.macs:,}, {len(self.warnings)} warning(s)>")

    @classmethod
    def of(cls, a: Analysis) -> Report:
        return a if isinstance(a, Report) else _copy(cls, a)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        """The layout of ``archviz shapes --format json``."""
        from .render.tables import to_dict

        return to_dict(self)

    def _repr_markdown_(self) -> str:
        from .render.tables import human, to_markdown

        t = self.totals
        return to_markdown(self) + (f"\nparams {t.params:,} ({human(t.params)}) · MACs {t.macs:,}"
                                    f" ({human(t.macs)}) · neurons {t.neurons:,}\n")


@dataclass(frozen=True, repr=False)
class Checks:
    """The results of ``archviz check``: iterable, ``ok`` when every check holds."""

    name: str
    results: tuple[CheckResult, ...]

    def __repr__(self) -> str:
        held = sum(r.ok for r in self.results)
        return f"<archviz.Checks {self.name!r}: {held} of {len(self.results)} checks hold>"

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def to_dict(self) -> dict[str, Any]:
        """The layout of ``archviz check --format json``."""
        from .render.tables import checks_to_dict

        return checks_to_dict(list(self.results))

    def _repr_markdown_(self) -> str:
        from .render.tables import checks_markdown

        return f"**{self.name}**\n\n" + checks_markdown(list(self.results))


@dataclass(frozen=True, repr=False)
class DiffReport(Diff):
    """A :class:`Diff` that shows itself in a notebook and turns into the CLI's JSON."""

    def __repr__(self) -> str:
        changed = sum(r.status != "same" for r in self.layers)
        return f"<archviz.DiffReport {self.a.name!r} → {self.b.name!r}: {changed} layer(s) differ>"

    @classmethod
    def of(cls, d: Diff) -> DiffReport:
        return _copy(cls, d)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        """The layout of ``archviz diff --format json``."""
        from .core.diff import to_dict

        return to_dict(self)

    def _repr_markdown_(self) -> str:
        from .render.views import diff_markdown

        return diff_markdown(self)


@dataclass(frozen=True, repr=False)
class Diagram:
    """A layer graph: ``graph`` is the graphviz object; ``svg()`` renders it (needs Graphviz's dot)."""

    graph: graphviz.Digraph

    def __repr__(self) -> str:
        return f"<archviz.Diagram {self.graph.name!r}: {len(self.graph.body)} DOT statements>"

    @property
    def source(self) -> str:
        """The DOT source (no Graphviz needed)."""
        return str(self.graph.source)

    def svg(self) -> str:
        from .render.dot import render

        return render(self.graph, "svg").decode("utf-8")

    def save(self, path: str, fmt: str | None = None) -> None:
        """Write svg, png, pdf or dot (from the suffix unless ``fmt``), atomically."""
        from pathlib import Path

        from .io import write_atomic
        from .render.dot import render

        write_atomic(path, render(self.graph, fmt or Path(path).suffix.lstrip(".").lower()))

    def _repr_svg_(self) -> str:
        return self.svg()
