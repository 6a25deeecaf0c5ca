"""install.sh chooses torch's build as the README says (issue 26): the CPU build from PyTorch's CPU
index where no CUDA is present, plain pip when that index cannot be reached, PyPI's default where
nvidia-smi is found. Run against a stand-in venv python that records each pip call (nothing is
installed, no network used)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

FAKE_PYTHON = """#!/bin/sh
# stands in for .venv/bin/python: torch is missing; each pip call is logged
if [ "$1" = "-c" ]; then exit 1; fi
echo "$*" >> "$LOG"
case "$*" in *--index-url*) [ "$CPU_INDEX_UP" = 1 ] || exit 1;; esac
exit 0
"""


def _run(tmp_path: Path, nvidia: bool, index_up: bool) -> tuple[list[str], str]:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "install.sh", tmp_path / "install.sh")
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    bin_ = tmp_path / "bin"   # a PATH with only what install.sh needs (so no real nvidia-smi)
    bin_.mkdir()
    for tool in ("dirname", "grep", "id", "cat", "sh"):
        found = shutil.which(tool)
        assert found, tool
        (bin_ / tool).symlink_to(found)
    for stub in ["dot", "chromium"] + (["nvidia-smi"] if nvidia else []):
        (bin_ / stub).write_text("#!/bin/sh\nexit 0\n")
        (bin_ / stub).chmod(0o755)
    log = tmp_path / "pip.log"
    env = {"PATH": str(bin_), "LOG": str(log), "CPU_INDEX_UP": "1" if index_up else "0",
           "HOME": os.environ.get("HOME", str(tmp_path))}
    bash = shutil.which("bash")
    assert bash
    r = subprocess.run([bash, str(tmp_path / "install.sh")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return log.read_text().splitlines(), r.stdout + r.stderr


def _torch_calls(calls: list[str]) -> list[str]:
    return [c for c in calls if "torch==" in c]


@pytest.mark.skipif(shutil.which("bash") is None, reason="install.sh is a bash script")
def test_no_cuda_takes_the_cpu_index_first(tmp_path: Path) -> None:
    calls, out = _run(tmp_path, nvidia=False, index_up=True)
    torch = _torch_calls(calls)
    assert len(torch) == 1
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch[0]
    assert "--timeout 15 --retries 0" in torch[0]            # an unreachable index fails fast
    assert "CPU build, from https://download.pytorch.org/whl/cpu" in out


@pytest.mark.skipif(shutil.which("bash") is None, reason="install.sh is a bash script")
def test_no_cuda_falls_back_to_plain_pip_and_says_so(tmp_path: Path) -> None:
    calls, out = _run(tmp_path, nvidia=False, index_up=False)
    torch = _torch_calls(calls)
    assert len(torch) == 2 and "--index-url" in torch[0] and "--index-url" not in torch[1]
    assert "could not be used" in out and "installed torch==2.13.0 with plain pip" in out


@pytest.mark.skipif(shutil.which("bash") is None, reason="install.sh is a bash script")
def test_cuda_machines_get_the_default_build(tmp_path: Path) -> None:
    calls, out = _run(tmp_path, nvidia=True, index_up=True)
    torch = _torch_calls(calls)
    assert len(torch) == 1 and "--index-url" not in torch[0]
    assert "nvidia-smi found" in out
