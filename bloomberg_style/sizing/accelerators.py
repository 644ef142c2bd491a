"""Accelerators the planner knows: dense BF16 peak and memory per device.

Peaks are the vendors' dense (no structured sparsity) BF16 tensor-core numbers; datasheets
often print the 2:4-sparsity figure, which is twice these. Memory is the nominal size in the
product name, taken as GiB (an "A100 40GB" shows 40 GiB to CUDA).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Accelerator:
    name: str
    peak_bf16_tflops: float  # dense, per device
    memory_gib: float
    source: str


ACCELERATORS: dict[str, Accelerator] = {
    a.name: a
    for a in (
        # NVIDIA A100 Tensor Core GPU datasheet: BF16 312 TFLOPS (624 with sparsity), 40 or 80 GB HBM.
        Accelerator("a100-40gb", 312.0, 40.0, "NVIDIA A100 datasheet"),
        Accelerator("a100-80gb", 312.0, 80.0, "NVIDIA A100 datasheet"),
        # NVIDIA H100 datasheet: SXM BF16 1,979 TFLOPS with sparsity -> 989 dense, 80 GB.
        Accelerator("h100-sxm", 989.0, 80.0, "NVIDIA H100 datasheet (SXM)"),
        # Same datasheet: PCIe BF16 1,513 with sparsity -> 756 dense, 80 GB.
        Accelerator("h100-pcie", 756.0, 80.0, "NVIDIA H100 datasheet (PCIe)"),
        # Same datasheet: H100 NVL BF16 1,671 with sparsity -> 835 dense, 94 GB.
        Accelerator("h100-nvl", 835.0, 94.0, "NVIDIA H100 datasheet (NVL)"),
        # NVIDIA H200 datasheet: SXM BF16 1,979 with sparsity -> 989 dense (H100 compute), 141 GB HBM3e.
        Accelerator("h200", 989.0, 141.0, "NVIDIA H200 datasheet (SXM)"),
        # NVIDIA HGX B200: BF16 4.5 PFLOPS with sparsity per GPU -> 2,250 dense, 180 GB HBM3e.
        Accelerator("b200", 2250.0, 180.0, "NVIDIA HGX B200 specifications"),
        # NVIDIA L40S datasheet: BF16 362.05 TFLOPS (733 with sparsity), 48 GB GDDR6.
        Accelerator("l40s", 362.0, 48.0, "NVIDIA L40S datasheet"),
        # AMD Instinct MI250X datasheet: peak BF16 383 TFLOPS, 128 GB HBM2e (both dies).
        Accelerator("mi250x", 383.0, 128.0, "AMD Instinct MI250X datasheet"),
        # AMD Instinct MI300X datasheet: peak BF16 1,307.4 TFLOPS dense (2,614.9 sparse), 192 GB HBM3.
        Accelerator("mi300x", 1307.4, 192.0, "AMD Instinct MI300X datasheet"),
    )
}


def get_accelerator(name: str) -> Accelerator:
    """Look a device up by name (case-insensitive); unknown names list the known ones."""
    key = str(name).strip().lower()
    if key not in ACCELERATORS:
        raise ValueError(f"unknown GPU {name!r}; known GPUs: {', '.join(ACCELERATORS)}")
    return ACCELERATORS[key]
