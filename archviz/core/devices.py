"""What a benchmark runs on: the device's name and versions; the table of peak TFLOP/s per dtype,
memory bandwidth and memory per GPU (bench's % of peak, cost's roofline and "fits"); the one
dtype Enum.

The peak table holds the vendors' dense (no 2:4 sparsity) tensor-core figures from the
datasheets; fp32 is the plain CUDA-core rate (TF32 off). GeForce cards are listed with the
fp16/bf16 rate at fp32 accumulation, which is what PyTorch's autocast uses. A device missing
from the table has no % of peak unless ``archviz bench --calibrate`` measures one.

torch is imported inside the functions that need it.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Dtype(str, Enum):
    """The one dtype vocabulary (bench, cost): fp32 (TF32 off), tf32 (TF32 on: CUDA matmul and
    cuDNN), bf16 / fp16 via autocast (fp32 master weights, low-precision activations). The cost
    model stores tf32 as fp32: TF32 changes the arithmetic, not the storage."""

    fp32 = "fp32"
    tf32 = "tf32"
    bf16 = "bf16"
    fp16 = "fp16"

    @property
    def stored(self) -> str:
        """The dtype activations are stored in."""
        return "fp32" if self is Dtype.tf32 else self.value

    @property
    def autocast(self) -> str | None:
        """The autocast dtype, or None for plain fp32 (tf32 included)."""
        return self.value if self in (Dtype.bf16, Dtype.fp16) else None


DTYPES = tuple(d.value for d in Dtype)

_DATASHEET = "vendor datasheet, dense"


@dataclass(frozen=True)
class GpuPeak:
    """One row of the table: a name pattern (regex, case-insensitive), TFLOP/s per dtype, memory
    bandwidth (GB/s) and memory (GiB: the vendors' "GB" of HBM/GDDR are binary), and a short
    ``key`` for ``archviz cost --device``."""

    pattern: str
    name: str
    fp32: float
    tf32: float | None
    bf16: float | None
    fp16: float | None
    source: str = _DATASHEET
    key: str = ""
    bandwidth_gbs: float | None = None
    memory_gib: float | None = None

    def get(self, dtype: str) -> float | None:
        return getattr(self, dtype)


def _row(key: str, pattern: str, name: str, peaks: tuple[float, float | None, float | None, float | None],
         gbs: float, gib: float, source: str = _DATASHEET) -> GpuPeak:
    return GpuPeak(pattern, name, *peaks, source=source, key=key, bandwidth_gbs=gbs, memory_gib=gib)


# Order matters: the first pattern that matches wins (PCIe/NVL before the SXM default).
# Bandwidth and memory: the same datasheets (NVIDIA H100, H200, GH200, A100, A10, L40S, L4, V100,
# T4, RTX A6000 datasheets; GeForce product pages). GTX 580: NVIDIA's GeForce GTX 580
# specifications (512 CUDA cores × 1544 MHz × 2 = 1.581 TFLOP/s fp32, 192.4 GB/s); 3 GB is the
# board the AlexNet paper used (Section 3.2); no tensor cores, no fast half types.
GPU_PEAKS: tuple[GpuPeak, ...] = (
    _row("h100-pcie", r"H100.*(PCIe)", "H100 PCIe", (51.2, 378.0, 756.0, 756.0), 2039, 80),
    _row("h100-nvl", r"H100.*NVL", "H100 NVL", (60.0, 417.5, 835.5, 835.5), 3900, 94),
    _row("h100", r"H100", "H100 SXM", (66.9, 494.7, 989.4, 989.4), 3350, 80),
    _row("gh200", r"GH200", "GH200", (66.9, 494.7, 989.4, 989.4), 4000, 96),  # before H200
    _row("h200-nvl", r"H200.*NVL", "H200 NVL", (60.0, 417.5, 835.5, 835.5), 4800, 141),
    _row("h200", r"H200", "H200 SXM", (66.9, 494.7, 989.4, 989.4), 4800, 141),
    _row("a100-40gb", r"A100.*40GB", "A100", (19.5, 156.0, 312.0, 312.0), 1555, 40),
    _row("a100", r"A100", "A100", (19.5, 156.0, 312.0, 312.0), 2039, 80),
    _row("a10", r"A10\b(?!G)", "A10", (31.2, 62.5, 125.0, 125.0), 600, 24),
    _row("l40s", r"L40S", "L40S", (91.6, 183.0, 362.0, 362.0), 864, 48),
    _row("l4", r"\bL4\b", "L4", (30.3, 60.0, 121.0, 121.0), 300, 24),
    _row("v100s", r"V100S", "V100S PCIe", (16.4, None, None, 130.0), 1134, 32),
    _row("v100-pcie", r"V100.*PCIE", "V100 PCIe", (14.0, None, None, 112.0), 900, 32),
    _row("v100", r"V100", "V100 SXM2", (15.7, None, None, 125.0), 900, 32),
    _row("t4", r"\bT4\b", "T4", (8.1, None, None, 65.0), 320, 16),
    _row("rtx4090", r"RTX 4090(?!.*Laptop)", "GeForce RTX 4090", (82.6, 82.6, 165.2, 165.2), 1008, 24),
    _row("rtx3090", r"RTX 3090", "GeForce RTX 3090", (35.6, 35.6, 71.0, 71.0), 936, 24),
    _row("rtx-a6000", r"RTX A6000", "RTX A6000", (38.7, 77.4, 154.8, 154.8), 768, 48),
    _row("gtx580", r"GTX 580", "GeForce GTX 580 3 GB", (1.581, None, None, None), 192.4, 3,
         "NVIDIA GeForce GTX 580 specifications: 512 cores × 1544 MHz × 2 FLOP; 192.4 GB/s"),
)


@dataclass(frozen=True)
class Link:
    """A link between GPUs: bandwidth per direction in GB/s."""

    key: str
    name: str
    gbs: float
    source: str


# PCI Express 2.0: 5 GT/s per lane, 8b/10b coding → 500 MB/s per lane per direction; ×16 = 8 GB/s
# (PCI-SIG, PCI Express Base Specification 2.0). The GTX 580 pair of the AlexNet paper talked over it.
LINKS: tuple[Link, ...] = (
    Link("pcie2x16", "PCIe 2.0 ×16", 8.0, "PCI-SIG PCIe Base Specification 2.0: 5 GT/s × 16 lanes, 8b/10b"),
    Link("pcie3x16", "PCIe 3.0 ×16", 15.75, "PCI-SIG PCIe Base Specification 3.0: 8 GT/s × 16, 128b/130b"),
    Link("pcie4x16", "PCIe 4.0 ×16", 31.5, "PCI-SIG PCIe Base Specification 4.0: 16 GT/s × 16, 128b/130b"),
    Link("nvlink4", "NVLink 4 (H100 SXM)", 450.0, "NVIDIA H100 datasheet: 900 GB/s both directions"),
)

# the link a device's GPUs talk over by default (the split's cross-GPU traffic)
DEFAULT_LINK = {"gtx580": "pcie2x16", "h100": "nvlink4", "h200": "nvlink4", "gh200": "nvlink4"}


def by_key(key: str) -> GpuPeak | None:
    return next((r for r in GPU_PEAKS if r.key == key.lower()), None)


def link_for(key: str) -> Link:
    name = DEFAULT_LINK.get(key, "pcie4x16")
    return next(li for li in LINKS if li.key == name)


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
