"""What a benchmark runs on: the device's name and versions, and its peak TFLOP/s per dtype.

The peak table holds the vendors' dense (no 2:4 sparsity) tensor-core figures from the
datasheets; fp32 is the plain CUDA-core rate (TF32 off). GeForce cards are listed with the
fp16/bf16 rate at fp32 accumulation, which is what PyTorch's autocast uses. A device missing
from the table has no % of peak unless ``archviz bench --calibrate`` measures one.

torch is imported inside the functions that need it (this module is imported by bench.py only).
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from typing import Any

DTYPES = ("fp32", "tf32", "bf16", "fp16")


@dataclass(frozen=True)
class GpuPeak:
    """One row of the table: a name pattern (regex, case-insensitive) and TFLOP/s per dtype."""

    pattern: str
    name: str
    fp32: float
    tf32: float | None
    bf16: float | None
    fp16: float | None
    source: str = "vendor datasheet, dense"

    def get(self, dtype: str) -> float | None:
        return getattr(self, dtype)


# Order matters: the first pattern that matches wins (PCIe/NVL before the SXM default).
GPU_PEAKS: tuple[GpuPeak, ...] = (
    GpuPeak(r"H100.*(PCIe)", "H100 PCIe", 51.2, 378.0, 756.0, 756.0),
    GpuPeak(r"H100.*NVL", "H100 NVL", 60.0, 417.5, 835.5, 835.5),
    GpuPeak(r"H100", "H100 SXM", 66.9, 494.7, 989.4, 989.4),
    GpuPeak(r"GH200", "GH200", 66.9, 494.7, 989.4, 989.4),       # before H200: "GH200" contains it
    GpuPeak(r"H200.*NVL", "H200 NVL", 60.0, 417.5, 835.5, 835.5),
    GpuPeak(r"H200", "H200 SXM", 66.9, 494.7, 989.4, 989.4),
    GpuPeak(r"A100", "A100", 19.5, 156.0, 312.0, 312.0),
    GpuPeak(r"A10\b(?!G)", "A10", 31.2, 62.5, 125.0, 125.0),
    GpuPeak(r"L40S", "L40S", 91.6, 183.0, 362.0, 362.0),
    GpuPeak(r"\bL4\b", "L4", 30.3, 60.0, 121.0, 121.0),
    GpuPeak(r"V100S", "V100S PCIe", 16.4, None, None, 130.0),
    GpuPeak(r"V100.*PCIE", "V100 PCIe", 14.0, None, None, 112.0),
    GpuPeak(r"V100", "V100 SXM2", 15.7, None, None, 125.0),
    GpuPeak(r"\bT4\b", "T4", 8.1, None, None, 65.0),
    GpuPeak(r"RTX 4090(?!.*Laptop)", "GeForce RTX 4090", 82.6, 82.6, 165.2, 165.2),
    GpuPeak(r"RTX 3090", "GeForce RTX 3090", 35.6, 35.6, 71.0, 71.0),
    GpuPeak(r"RTX A6000", "RTX A6000", 38.7, 77.4, 154.8, 154.8),
)


def lookup(device_name: str) -> GpuPeak | None:
    """The table row for a ``torch.cuda.get_device_name()`` string, or None."""
    for row in GPU_PEAKS:
        if re.search(row.pattern, device_name, re.IGNORECASE):
            return row
    return None


def table_peak(device_name: str, dtype: str) -> float | None:
    row = lookup(device_name)
    return row.get(dtype) if row else None


@dataclass(frozen=True)
class DeviceInfo:
    kind: str                    # cpu, cuda, mps
    name: str                    # "NVIDIA H100 80GB HBM3", or the CPU's model name
    torch: str
    cuda: str | None = None      # CUDA runtime torch was built with
    driver: str | None = None
    cudnn: str | None = None
    capability: str | None = None
    memory_gib: float | None = None
    cpu: str = ""
    threads: int = 0
    python: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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
