"""Training compute budget C (model FLOPs) from GPU-hours and a per-GPU rate.

BloombergGPT: 1.3M A100-40GB hours at an assumed 100 TFLOP/s per GPU, times 0.75 because
checkpointing every layer recomputes the forward pass (8N FLOPs per token of hardware work
for 6N of model work): C = 1.3e6 * 3600 * 100e12 * 0.75 = 3.51e23. A share of C (30% in the
paper) is held back for failures, retries and restarts.

Rates: `tflops` is the hardware rate per GPU counting the recomputation (how the paper
quotes 100 and 102 TFLOP/s); `hfu` is that rate as a fraction of the GPU's peak; `mfu`
counts model FLOPs only (6N per token, PaLM's definition), so it already excludes the
recomputation and the hardware rate is mfu * peak / recompute_factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .accelerators import Accelerator, get_accelerator

# The paper assumed 100 TFLOP/s on a 312 TFLOP/s A100: the default fraction of any GPU's peak.
PAPER_HFU = 100.0 / 312.0


def check_number(
    name: str,
    value: object,
    *,
    low: float = 0.0,
    high: float = math.inf,
    low_open: bool = True,
    high_open: bool = False,
) -> float:
    """Return value as float, or raise ValueError naming `name` and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        if math.isinf(high):
            raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
        left, right = ("(" if low_open else "["), (")" if high_open else "]")
        raise ValueError(f"{name} must be in {left}{low:g}, {high:g}{right}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ComputeBudget:
    gpu_hours: float
    gpu: Accelerator
    hardware_tflops: float  # per GPU, recomputation counted
    recompute_factor: float  # model FLOPs / hardware FLOPs (6N / 8N = 0.75 with full checkpointing)
    buffer: float  # share of C kept for failures

    @property
    def model_tflops(self) -> float:
        return self.hardware_tflops * self.recompute_factor

    @property
    def hfu(self) -> float:
        return self.hardware_tflops / self.gpu.peak_bf16_tflops

    @property
    def mfu(self) -> float:
        return self.model_tflops / self.gpu.peak_bf16_tflops

    @property
    def flops(self) -> float:
        """C: model FLOPs the GPU-hours buy."""
        return self.gpu_hours * 3600.0 * self.model_tflops * 1e12

    @property
    def usable_flops(self) -> float:
        """C * (1 - buffer): what a plan may spend."""
        return self.flops * (1.0 - self.buffer)


def compute_budget(
    gpu_hours: float,
    gpu: str = "a100-40gb",
    *,
    tflops: float | None = None,
    hfu: float | None = None,
    mfu: float | None = None,
    recompute_factor: float = 0.75,
    buffer: float = 0.3,
) -> ComputeBudget:
    """Budget from GPU-hours and at most one of tflops / hfu / mfu (default: the paper's HFU)."""
    hours = check_number("gpu_hours", gpu_hours)
    device = get_accelerator(gpu)
    factor = check_number("recompute_factor", recompute_factor, high=1.0)
    held = check_number("buffer", buffer, low_open=False, high=1.0, high_open=True)
    given = {k: v for k, v in (("tflops", tflops), ("hfu", hfu), ("mfu", mfu)) if v is not None}
    if len(given) > 1:
        raise ValueError(f"give at most one of tflops, hfu, mfu; got {', '.join(given)}")
    peak = device.peak_bf16_tflops
    if tflops is not None:
        rate = check_number("tflops", tflops)
    elif mfu is not None:
        rate = check_number("mfu", mfu, high=1.0) * peak / factor
    else:
        rate = check_number("hfu", hfu if hfu is not None else PAPER_HFU, high=1.0) * peak
    if rate > peak * (1 + 1e-9):
        asked = (
            f"tflops={tflops:g}" if tflops is not None else f"mfu={mfu:g} with recompute_factor={factor:g}"
        )
        raise ValueError(
            f"{asked} means {rate:.0f} hardware TFLOP/s per GPU, above the {device.name} "
            f"dense BF16 peak of {peak:g}"
        )
    return ComputeBudget(hours, device, rate, factor, held)
