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
    """Compare text with tests/golden/<name>; rewrite it instead when ARCHVIZ_REGEN_GOLDEN=1.

    A missing golden file fails (it is never written silently: a test that wrote its own
    expectation would pass whatever the output); ARCHVIZ_REGEN_GOLDEN=1 writes it."""

    def check(self, name: str, text: str) -> None:
        path = GOLDEN / name
        if REGEN:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"golden file tests/golden/{name} is missing"
                        " (ARCHVIZ_REGEN_GOLDEN=1 writes it; review it before committing)")
        expected = path.read_text(encoding="utf-8")
        assert text == expected, f"output differs from tests/golden/{name}" \
            " (ARCHVIZ_REGEN_GOLDEN=1 rewrites it; review the diff)"


@pytest.fixture
def golden() -> Golden:
    return Golden()

