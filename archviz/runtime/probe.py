"""Ask the machine what it has: the device's name and versions (torch, the NVIDIA driver from
/proc, NVML or nvidia-smi, the CPU's model name), which dtypes it runs, and its peak memory.

The pure side (the device table, :class:`~archviz.core.devices.DeviceInfo`, the dtype Enum) is
:mod:`archviz.core.devices`. torch is imported inside the functions that need it.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

from ..core.cost import GIB, CostError, Target, local_target, target
from ..core.devices import DeviceInfo, GpuPeak

CALIBRATION_ENV = "ARCHVIZ_CALIBRATION"


def calibration_path() -> Path:
    """Where ``archviz bench --calibrate`` keeps what it measured: ``$ARCHVIZ_CALIBRATION``, else
    ``$XDG_CACHE_HOME/archviz/calibration.json`` (``~/.cache/archviz/calibration.json``)."""
    given = os.environ.get(CALIBRATION_ENV)
    if given:
        return Path(given).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "archviz" / "calibration.json"


def save_calibration(kind: str, name: str, tflops: dict[str, float | None], gbs: float | None) -> Path:
    """Keep a device kind's measured peaks (TFLOP/s per dtype, GB/s) for ``archviz cost``."""
    import json
    import time

    from ..io import write_atomic

    path = calibration_path()
    data = load_calibrations()
    data[kind] = {"name": name, "tflops": {k: v for k, v in tflops.items() if v},
                  "bandwidth_gbs": gbs, "measured": time.strftime("%Y-%m-%d")}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(str(path), json.dumps(data, indent=2) + "\n")
    return path


def load_calibrations() -> dict[str, Any]:
    """Every kept calibration by device kind; {} when there is none (or it cannot be read)."""
    import json

    try:
        data = json.loads(calibration_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _cpu_target() -> Target:
    """This CPU: its memory from /proc/meminfo, its peaks from the kept calibration (none: no time)."""
    mem = _meminfo_gib()
    found = load_calibrations().get("cpu")
    try:
        tf = {k: float(v) for k, v in found["tflops"].items()} if found else {}
        gbs = float(found["bandwidth_gbs"]) if found and found.get("bandwidth_gbs") else None
    except (KeyError, TypeError, ValueError, AttributeError):
        tf, gbs = {}, None
    if not tf.get("fp32") or not gbs:
        return local_target("cpu", "this machine's CPU", mem, "/proc/meminfo; no calibration")
    peak = GpuPeak("", str(found.get("name", "CPU")), tf["fp32"], None, tf.get("bf16"), tf.get("fp16"),
                   source=f"archviz bench --calibrate, {found.get('measured', '')}", key="cpu",
                   bandwidth_gbs=gbs, memory_gib=mem)
    return Target("cpu", peak.name, mem, gbs, peak, None, peak.source)


def device_target(name: str) -> Target:
    """``--device``: ``cpu`` or ``cuda`` for this machine's hardware, else a row of the table."""
    key = name.strip().lower()
    if key == "cpu":
        return _cpu_target()
    if key == "cuda":
        import torch  # only for --device cuda: which GPU this is

        if not torch.cuda.is_available():
            raise CostError("--device cuda: no CUDA GPU here; name a table entry instead (e.g. h100)")
        props = torch.cuda.get_device_properties(0)
        return local_target("cuda", props.name, props.total_memory / GIB, "torch.cuda.get_device_properties")
    return target(name)


def _meminfo_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 / GIB
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia_driver() -> str | None:
    """The NVIDIA driver version: the kernel module's (Linux /proc), else NVML's (``nvidia-ml-py``,
    if installed), else ``nvidia-smi``'s; None when none of them answers."""
    for source in (_driver_proc, _driver_nvml, _driver_smi):
        found = source()
        if found:
            return found
    return None


def _driver_proc() -> str | None:
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as fh:
            match = re.search(r"Kernel Module\s+([\d.]+)", fh.read())
    except OSError:
        return None
    return match.group(1) if match else None


def _driver_nvml() -> str | None:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - NVML errors (no driver, no permission): try the next source
        return None
    text = version.decode() if isinstance(version, bytes) else str(version)
    return text.strip() or None


def _driver_smi() -> str | None:
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines and re.fullmatch(r"[\d.]+", lines[0].strip()) \
        else None


def available(kind: str) -> bool:
    import torch

    if kind == "cuda":
        return bool(torch.cuda.is_available())
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return kind == "cpu"


def describe(kind: str) -> DeviceInfo:
    import torch

    common = dict(torch=torch.__version__, cpu=cpu_name(), threads=torch.get_num_threads(),
                  python=platform.python_version())
    if kind == "cuda":
        props = torch.cuda.get_device_properties(0)
        cudnn = torch.backends.cudnn.version()
        return DeviceInfo("cuda", props.name, cuda=torch.version.cuda, driver=nvidia_driver(),
                          cudnn=str(cudnn) if cudnn else None,
                          capability=f"{props.major}.{props.minor}",
                          memory_gib=round(props.total_memory / 2**30, 1), **common)  # type: ignore[arg-type]
    if kind == "mps":
        return DeviceInfo("mps", f"Apple GPU (MPS, {platform.machine()})", **common)  # type: ignore[arg-type]
    return DeviceInfo("cpu", f"{cpu_name()} ({os.cpu_count()} cores)", **common)  # type: ignore[arg-type]


def dtype_support(info: DeviceInfo, dtype: str) -> str | None:
    """None when ``dtype`` runs on the device, else why not (shown as the row's note)."""
    if dtype == "fp32":
        return None
    if info.kind == "cuda":
        major = int((info.capability or "0.0").split(".")[0])
        if dtype in ("tf32", "bf16") and major < 8:
            return f"{dtype} needs compute capability 8.0 (Ampere) or newer; this GPU is {info.capability}"
        return None
    if dtype == "tf32":
        return f"tf32 is a CUDA tensor-core mode; not available on {info.kind}"
    if info.kind == "mps" and dtype == "bf16":
        import torch

        ok = hasattr(torch.backends.mps, "is_macos_or_newer") and torch.backends.mps.is_macos_or_newer(14, 0)
        return None if ok else "bf16 on MPS needs macOS 14 or newer"
    return None


def synchronize(kind: str) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    import torch

    if kind == "cuda":
        torch.cuda.synchronize()
    elif kind == "mps":
        torch.mps.synchronize()


def reset_peak_memory(kind: str) -> None:
    """Start a new peak: the CUDA allocator's, or the process's peak RSS (Linux clear_refs)."""
    import torch

    if kind == "cuda":
        torch.cuda.reset_peak_memory_stats()
    elif kind == "cpu":
        try:  # writing 5 resets VmHWM, the peak resident set size (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
        except OSError:
            pass


def peak_memory(kind: str) -> tuple[int | None, str]:
    """(bytes, what was measured) since the last :func:`reset_peak_memory`."""
    import torch

    if kind == "cuda":
        return int(torch.cuda.max_memory_allocated()), "CUDA allocator peak"
    if kind == "mps":
        return int(torch.mps.driver_allocated_memory()), "MPS driver allocation"
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "process peak RSS"
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024), "process peak RSS since start"
