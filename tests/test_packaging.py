"""The wheel carries the bundled specs (so `archviz shapes alexnet` works from any directory
after `pip install`) and the `archviz` console script."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, bundled_specs


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools")
def test_wheel_contains_specs_and_entry_point(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: setuptools' build/ folder stays out of the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info",
                                                                "__pycache__", ".hypothesis"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("archviz-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"archviz/data/{stem}.yaml" for stem in bundled_specs()} <= names
    assert {"archviz/render/dot.py", "archviz/cli/app.py", "archviz/runtime/compile.py"} <= names
    # archviz view's page: its script, style and template, and the vendored library with its licence
    assert {"archviz/render/assets/view.js", "archviz/render/assets/view.css",
            "archviz/render/assets/view.html", "archviz/render/vendor/svg-pan-zoom.min.js",
            "archviz/render/vendor/svg-pan-zoom.LICENSE"} <= names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "archviz = archviz.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
