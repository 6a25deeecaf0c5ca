"""Shared fixtures. Golden files: run `ARCHVIZ_REGEN_GOLDEN=1 pytest` to rewrite them, then
read the diff (`git diff tests/golden`) before committing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("ARCHVIZ_REGEN_GOLDEN") == "1"


def bundled_specs() -> list[str]:
    return sorted(p.stem for p in SPECS.glob("*.yaml"))


class Golden:
    """Compare text with tests/golden/<name>; rewrite it instead when ARCHVIZ_REGEN_GOLDEN=1."""

    def check(self, name: str, text: str) -> None:
        path = GOLDEN / name
        if REGEN or not path.exists():
            if not REGEN and os.environ.get("CI"):
                pytest.fail(f"golden file {name} is missing (run with ARCHVIZ_REGEN_GOLDEN=1)")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        expected = path.read_text(encoding="utf-8")
        assert text == expected, f"output differs from tests/golden/{name}" \
            " (ARCHVIZ_REGEN_GOLDEN=1 rewrites it; review the diff)"


@pytest.fixture
def golden() -> Golden:
    return Golden()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (full sweeps) run only when asked: ``pytest -m slow``; the default
    run keeps CI short with their representative subsets."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="a full sweep: run with `pytest -m slow`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
