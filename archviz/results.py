"""What the public API returns: the core's results with ``to_dict()`` (the command's
``--format json``), ``str()`` (the table the command prints, at its natural width, as the CLI
writes it to a file or a pipe) and display in Jupyter (``_repr_markdown_`` for tables,
``_repr_svg_`` for diagrams, ``_repr_png_`` for plots, ``_repr_html_`` for the view and the
benchmark).

Each result is the core's own value where there is one (a :class:`Report` *is* an
:class:`Analysis`, a :class:`CostReport` a :class:`Cost`), so anything that takes the one takes
the other. The render layer is imported inside the methods only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from .core.analysis import Analysis
from .core.check import CheckResult
from .core.cost import Cost
from .core.diff import Diff
from .record import record
from .runtime.bench_rows import BenchResult, Status

if TYPE_CHECKING:  # pragma: no cover
    import graphviz
    from matplotlib.figure import Figure

    from .runtime.compile import Verification

NATURAL = 1000   # as the CLI writes a table to a file or a pipe (archviz.cli.common.FULL_WIDTH)


def _copy(cls: type, value: Any, **more: Any) -> Any:
    return cls(**{f.name: getattr(value, f.name) for f in fields(value)}, **more)


def _text(renderable: Any, width: int = NATURAL) -> str:
    from .render.tables import plain_text

    return plain_text(renderable, width=width)


def _html(renderable: Any, width: int = 160) -> str:
    """A rich renderable as HTML (a ``<pre>`` with the CLI's colours), for a notebook."""
    import io

    from rich.console import Console

    out = Console(record=True, width=width, file=io.StringIO(), highlight=False, emoji=False)
    out.print(renderable)
    return out.export_html(inline_styles=True, code_format='<pre style="font-size:12px;line-height:1.25">'
                                                         '{code}</pre>')


@record(repr=False)
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

    def __str__(self) -> str:
        """The table of ``archviz shapes``, with every column."""
        from .render.tables import ShapesView

        return _text(ShapesView(self))

    def _repr_markdown_(self) -> str:
        from .render.tables import human, to_markdown

        t = self.totals
        return to_markdown(self) + (f"\nparams {t.params:,} ({human(t.params)}) · MACs {t.macs:,}"
                                    f" ({human(t.macs)}) · neurons {t.neurons:,}\n")


@record(repr=False)
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

    def __str__(self) -> str:
        """What ``archviz check`` prints."""
        from .render.tables import checks_view
        from .render.text import strip_control

        if not self.results:
            return f"{strip_control(self.name)}: the spec has no expect: or claims: entries to check\n"
        return _text(checks_view(list(self.results)))

    def _repr_markdown_(self) -> str:
        from .render.tables import checks_markdown

        return f"**{self.name}**\n\n" + checks_markdown(list(self.results))


@record(repr=False)
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

    def __str__(self) -> str:
        """The table of ``archviz diff``."""
        from .render.views import diff_view

        return _text(diff_view(self))

    def _repr_markdown_(self) -> str:
        from .render.views import diff_markdown

        return diff_markdown(self)


@record(repr=False)
class Diagram:
    """A layer graph: ``graph`` is the graphviz object; ``svg()`` renders it (needs Graphviz's dot)."""

    graph: graphviz.Digraph

    def __repr__(self) -> str:
        return f"<archviz.Diagram {self.graph.name!r}: {len(self.graph.body)} DOT statements>"

    @property
    def source(self) -> str:
        """The DOT source (no Graphviz needed)."""
        return str(self.graph.source)

    def __str__(self) -> str:
        """The DOT source, as ``archviz draw -o x.dot`` writes it."""
        return self.source

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


@record(kw_only=True, repr=False)
class CostReport(Cost):
    """A :class:`Cost` (``archviz cost``) that prints as the CLI's tables and shows itself in a notebook;
    ``run``: a whole run's steps and time (``epochs``/``images`` or ``tokens``), None where none was asked."""

    run: Any = None

    @classmethod
    def of(cls, c: Cost, run: Any = None) -> CostReport:
        return _copy(cls, c, run=run)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        fits = {True: "fits", False: "does not fit", None: "capacity unknown"}[self.fits]
        return (f"<archviz.CostReport {self.name!r} on {self.target.name}: peak {self.peak:,} bytes, {fits},"
                f" largest batch {self.largest_batch}>")

    def _base(self) -> Cost:
        return Cost(**{f.name: getattr(self, f.name) for f in fields(Cost)})

    def to_dict(self) -> dict[str, Any]:
        """The layout of ``archviz cost --format json``."""
        from .render.cost_view import to_dict

        return to_dict(self._base(), self.run)

    def __str__(self) -> str:
        """The tables of ``archviz cost`` (as ``-o cost.txt`` writes them)."""
        from .render.cost_view import cost_view

        return _text(cost_view(self._base(), self.run), 160)

    def _repr_markdown_(self) -> str:
        from .render.cost_view import to_markdown

        return to_markdown(self._base(), self.run)


@record(repr=False)
class CostSweep:
    """``archviz cost`` over lists (``archviz.cost("gpt2", ["a100", "h100"], batch=[1, 8])``): one
    row per configuration. ``.sweep`` is the :class:`archviz.runtime.costing.Sweep` (its ``rows``
    each the swept values, the :class:`Cost` and run, or why the combination is invalid);
    iterating gives each row's :class:`CostReport` (None for an invalid row)."""

    sweep: Any

    def __repr__(self) -> str:
        bad = sum(1 for r in self.sweep.rows if r.error)
        return (f"<archviz.CostSweep {self.sweep.name!r}: {len(self)} configurations"
                f" ({', '.join(self.sweep.varied) or 'one'} swept), {bad} invalid>")

    def __len__(self) -> int:
        return len(self.sweep.rows)

    def __iter__(self) -> Iterator[CostReport | None]:
        return (None if r.cost is None else CostReport.of(r.cost, r.run) for r in self.sweep.rows)

    def to_dict(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The layout of ``archviz cost --format json`` over lists: a list, a row each."""
        from .render.cost_sweep import as_list

        return as_list(self.sweep)

    def to_csv(self) -> str:
        from .render.cost_sweep import to_csv

        return to_csv(self.sweep)

    def __str__(self) -> str:
        from .render.cost_sweep import sweep_view

        return _text(sweep_view(self.sweep), 200)

    def _repr_markdown_(self) -> str:
        from .render.cost_sweep import to_markdown

        return to_markdown(self.sweep)


@record(repr=False)
class Plot:
    """A chart of ``archviz plot``: ``figure`` is the matplotlib Figure; ``png()``, ``svg()``, ``save()``."""

    figure: Figure
    name: str
    kind: str

    def __repr__(self) -> str:
        return f"<archviz.Plot {self.kind} of {self.name!r}>"

    def data(self, fmt: str) -> bytes:
        """The figure as png, svg or pdf bytes (no timestamps: the same bytes every time)."""
        from .render.plots import figure_bytes

        return figure_bytes(self.figure, fmt)

    def png(self) -> bytes:
        return self.data("png")

    def svg(self) -> str:
        return self.data("svg").decode("utf-8")

    def save(self, path: str, fmt: str | None = None) -> None:
        """Write png, svg or pdf (from the suffix unless ``fmt``), atomically."""
        from pathlib import Path

        from .io import write_atomic

        write_atomic(path, self.data(fmt or Path(path).suffix.lstrip(".").lower()))

    def _repr_png_(self) -> bytes:
        return self.png()


@record(repr=False)
class View:
    """The offline page of ``archviz view``: ``html`` is the whole document, ``save(path)`` writes it;
    a notebook shows it inline (an iframe whose ``srcdoc`` is the page)."""

    html: str
    height: int = 640

    def __repr__(self) -> str:
        return f"<archviz.View: {len(self.html.encode('utf-8')):,} bytes of HTML>"

    def save(self, path: str) -> None:
        from .io import write_atomic

        write_atomic(path, self.html)

    def _repr_html_(self) -> str:
        from .render.html import View as Page

        return str(Page(self.html, self.height)._repr_html_())


@record(repr=False)
class VerifyReport:
    """What ``archviz verify`` found: ``result`` is the :class:`~archviz.runtime.compile.Verification`
    (its fields read through: ``layers``, ``macs``, ``torch_flops``, ``device``, ...); ``ok`` when
    the compiled module agrees with the analysis everywhere."""

    result: Verification

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.result, name)

    @classmethod
    def of(cls, v: Verification) -> VerifyReport:
        return cls(v)

    @property
    def ok(self) -> bool:
        return bool(self.result.ok)

    def __repr__(self) -> str:
        v = self.result
        return (f"<archviz.VerifyReport {v.name!r} on {v.device}: {'ok' if v.ok else 'DIFFERS'},"
                f" {len(v.layers)} layers>")

    def to_dict(self) -> dict[str, Any]:
        """The layout of ``archviz verify --format json``."""
        from .render.views import verify_to_dict

        return verify_to_dict(self.result)

    def __str__(self) -> str:
        """The table of ``archviz verify``."""
        from .render.views import verify_view

        return _text(verify_view(self.result))

    def _repr_markdown_(self) -> str:
        from .render.views import verify_markdown

        return verify_markdown(self.result)


@record(repr=False)
class Exported:
    """What ``archviz export`` writes: ``data`` is the PyTorch source (``format`` py, a str) or the
    TorchScript / ONNX file's bytes; ``save(path)`` writes it."""

    name: str
    format: str
    data: str | bytes

    def __repr__(self) -> str:
        return f"<archviz.Exported {self.name!r} as {self.format}: {len(self.data):,} {self._unit}>"

    @property
    def _unit(self) -> str:
        return "characters" if isinstance(self.data, str) else "bytes"

    def __str__(self) -> str:
        """The source (as ``archviz export`` prints it); for a binary format, the repr."""
        return self.data if isinstance(self.data, str) else repr(self)

    def save(self, path: str) -> None:
        from .io import write_atomic

        write_atomic(path, self.data)

    def _repr_markdown_(self) -> str:
        if isinstance(self.data, str):
            return f"```python\n{self.data}```\n"
        return f"`{self.format}`: {len(self.data):,} bytes (`.save(path)` writes them)"


@record(kw_only=True, repr=False)
class BenchReport(BenchResult):
    """A :class:`~archviz.runtime.bench_rows.BenchResult` (``archviz bench``): ``rows`` one per
    (model, mode, dtype, batch); prints as the CLI's tables, ``to_dict()`` is its JSON."""

    @classmethod
    def of(cls, r: BenchResult) -> BenchReport:
        return _copy(cls, r)  # type: ignore[no-any-return]

    @property
    def ok(self) -> bool:
        """At least one row ran, none was interrupted."""
        return not self.interrupted and any(r.status is Status.ok for r in self.rows)

    def __repr__(self) -> str:
        done = sum(r.status is Status.ok for r in self.rows)
        return (f"<archviz.BenchReport {self.spec_name!r} on {self.device.name}:"
                f" {done} of {len(self.rows)} rows ran>")

    def to_dict(self) -> dict[str, Any]:
        """The layout of ``archviz bench --format json``."""
        from .runtime.bench_rows import result_dict

        return result_dict(self)

    def _view(self) -> Any:
        from rich.console import Group

        from .render import bench_view

        parts = [*bench_view.header(self.spec_name, self.device, self.settings),
                 *bench_view.report(list(self.rows), self.works[0].label, self.ratios, self.interrupted,
                                    on_cpu=self.device.kind == "cpu")]
        return Group(*parts)

    def __str__(self) -> str:
        """The tables of ``archviz bench`` (as ``-o bench.txt`` writes them)."""
        return _text(self._view())

    def _repr_html_(self) -> str:
        return _html(self._view())
