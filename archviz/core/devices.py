"""What a benchmark runs on, as a record (:class:`DeviceInfo`); the table of peak TFLOP/s per dtype,
memory bandwidth and memory per GPU (bench's % of peak, cost's roofline and "fits"); the links
between GPUs; the one dtype Enum. Pure: asking the machine what it has (torch, NVML,
nvidia-smi, /proc) is :mod:`archviz.runtime.probe`'s work.

The peak table holds the vendors' dense (no 2:4 sparsity) tensor-core figures from the
datasheets; fp32 is the plain CUDA-core rate (TF32 off). GeForce cards are listed with the
fp16/bf16 rate at fp32 accumulation, which is what PyTorch's autocast uses. A device missing
from the table has no % of peak unless ``archviz bench --calibrate`` measures one.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from ..record import record


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


@record
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


@record
class Link:
    """A link between GPUs: bandwidth per direction in GB/s."""

    key: str
    name: str
    gbs: float
    source: str


# Bandwidths per direction. PCI Express 2.0: 5 GT/s per lane, 8b/10b coding → 500 MB/s per lane
# per direction; ×16 = 8 GB/s (PCI-SIG). The GTX 580 pair of the AlexNet paper talked over it.
# NVLink: the datasheets give both directions (V100 SXM2 300 GB/s, A100 SXM 600, H100/H200 SXM
# 900); InfiniBand: one port per GPU as in DGX A100 (8 × HDR 200 Gb/s, the machine of Narayanan
# et al. 2021) and DGX H100 (8 × NDR 400 Gb/s), Gb/s ÷ 8 per direction.
LINKS: tuple[Link, ...] = (
    Link("pcie2x16", "PCIe 2.0 ×16", 8.0, "PCI-SIG PCIe Base Specification 2.0: 5 GT/s × 16 lanes, 8b/10b"),
    Link("pcie3x16", "PCIe 3.0 ×16", 15.75, "PCI-SIG PCIe Base Specification 3.0: 8 GT/s × 16, 128b/130b"),
    Link("pcie4x16", "PCIe 4.0 ×16", 31.5, "PCI-SIG PCIe Base Specification 4.0: 16 GT/s × 16, 128b/130b"),
    Link("nvlink2", "NVLink 2 (V100 SXM2)", 150.0, "NVIDIA V100 datasheet: 300 GB/s both directions"),
    Link("nvlink3", "NVLink 3 (A100 SXM)", 300.0, "NVIDIA A100 datasheet: 600 GB/s both directions"),
    Link("nvlink4", "NVLink 4 (H100/H200 SXM)", 450.0, "NVIDIA H100 datasheet: 900 GB/s both directions"),
    Link("ib-hdr", "InfiniBand HDR", 25.0, "InfiniBand HDR 200 Gb/s per port (DGX A100: one per GPU)"),
    Link("ib-ndr", "InfiniBand NDR", 50.0, "InfiniBand NDR 400 Gb/s per port (DGX H100: one per GPU)"),
)

# the link a device's GPUs talk over within a node by default (the split's cross-GPU traffic)
DEFAULT_LINK = {"gtx580": "pcie2x16", "h100": "nvlink4", "h200": "nvlink4", "gh200": "nvlink4",
                "a100": "nvlink3", "a100-40gb": "nvlink3", "v100": "nvlink2"}
# between nodes (GPUS_PER_NODE each): one InfiniBand port per GPU
NETWORK = {"h100": "ib-ndr", "h200": "ib-ndr", "gh200": "ib-ndr", "h100-nvl": "ib-ndr",
           "h200-nvl": "ib-ndr", "h100-pcie": "ib-ndr"}
GPUS_PER_NODE = 8


def by_key(key: str) -> GpuPeak | None:
    return next((r for r in GPU_PEAKS if r.key == key.lower()), None)


def link_by_key(name: str) -> Link:
    return next(li for li in LINKS if li.key == name)


def link_for(key: str) -> Link:
    """The link between two GPUs of one node."""
    return link_by_key(DEFAULT_LINK.get(key, "pcie4x16"))


def network_for(key: str) -> Link:
    """The link between nodes, per GPU."""
    return link_by_key(NETWORK.get(key, "ib-hdr"))


def lookup(device_name: str) -> GpuPeak | None:
    """The table row for a ``torch.cuda.get_device_name()`` string, or None."""
    for row in GPU_PEAKS:
        if re.search(row.pattern, device_name, re.IGNORECASE):
            return row
    return None


def table_peak(device_name: str, dtype: str) -> float | None:
    row = lookup(device_name)
    return row.get(dtype) if row else None


@record
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
