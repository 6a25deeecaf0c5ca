"""bench's NVIDIA driver version where /proc/driver/nvidia/version is absent: NVML, then nvidia-smi."""

from __future__ import annotations

import subprocess
import sys
import types
from typing import Any

import pytest

from archviz.runtime import probe


@pytest.fixture
def no_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "_driver_proc", lambda: None)


def _fake_nvml(version: Any, fail: bool = False) -> types.ModuleType:
    mod = types.ModuleType("pynvml")
    calls: list[str] = []

    def init() -> None:
        calls.append("init")
        if fail:
            raise RuntimeError("NVML Shared Library Not Found")

    mod.nvmlInit = init  # type: ignore[attr-defined]
    mod.nvmlSystemGetDriverVersion = lambda: version  # type: ignore[attr-defined]
    mod.nvmlShutdown = lambda: calls.append("shutdown")  # type: ignore[attr-defined]
    mod.calls = calls  # type: ignore[attr-defined]
    return mod


def _smi(monkeypatch: pytest.MonkeyPatch, stdout: str, rc: int = 0) -> list[list[str]]:
    seen: list[list[str]] = []

    def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, rc, stdout, "")

    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None)
    monkeypatch.setattr(subprocess, "run", run)
    return seen


def test_proc_file_is_read_first(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
    real_open = open

    def fake_open(path: Any, *a: Any, **k: Any) -> Any:
        return _StringFile(text) if path == "/proc/driver/nvidia/version" else real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml("1.0"))
    assert probe.nvidia_driver() == "550.54.15"


class _StringFile:
    def __init__(self, text: str) -> None:
        self.text = text

    def __enter__(self) -> _StringFile:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def read(self) -> str:
        return self.text


def test_nvml_when_proc_is_absent(monkeypatch: pytest.MonkeyPatch, no_proc: None) -> None:
    nvml = _fake_nvml(b"570.86.10")
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    seen = _smi(monkeypatch, "999.0\n")
    assert probe.nvidia_driver() == "570.86.10"
    assert nvml.calls == ["init", "shutdown"] and not seen  # type: ignore[attr-defined]


def test_nvidia_smi_when_nvml_fails_or_is_missing(monkeypatch: pytest.MonkeyPatch, no_proc: None) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml("x", fail=True))
    seen = _smi(monkeypatch, "560.35.03\n560.35.03\n")
    assert probe.nvidia_driver() == "560.35.03"
    assert seen == [["/usr/bin/nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]]
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed: `import pynvml` raises ImportError
    assert probe.nvidia_driver() == "560.35.03"


def test_none_when_nothing_answers(monkeypatch: pytest.MonkeyPatch, no_proc: None) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    _smi(monkeypatch, "NVIDIA-SMI has failed because it couldn't communicate with the driver\n", rc=9)
    assert probe.nvidia_driver() is None
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert probe.nvidia_driver() is None
