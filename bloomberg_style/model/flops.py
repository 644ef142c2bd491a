"""FLOPs per token and model-FLOPs utilisation.

Per token a dense decoder with N parameters costs 2N FLOPs forward and 4N backward (6N);
recomputing activations (checkpointing every layer) repeats the forward: 8N. Attention
scores add 2 matmuls of (seq x head_dim) per head per layer: 4*s*D forward per token per
layer, so 12*L*s*D for forward+backward (16*L*s*D with recompute). BloombergGPT quoted
its 102 TFLOP/s with the plain 8N count, which `include_attention=False` reproduces.

MFU counts model FLOPs only (6N + attention), never the recompute (nanoGPT #182); the
hardware rate with recompute is reported separately.
"""

from __future__ import annotations

from typing import Protocol


class _Shape(Protocol):
    num_layers: int
    hidden_size: int


def flops_per_token(
    cfg: _Shape, num_parameters: int, seq_len: int, *, recompute: bool = False, include_attention: bool = True
) -> float:
    """Training FLOPs (forward + backward) per token."""
    passes = 4 if recompute else 3  # forward counts 1, backward 2, recompute 1 more
    dense = 2 * num_parameters * passes
    attention = 4 * cfg.num_layers * seq_len * cfg.hidden_size * passes if include_attention else 0
    return float(dense + attention)


def achieved_tflops(flops_per_tok: float, tokens: float, seconds: float, devices: int) -> float:
    """TFLOP/s per device for `tokens` processed in `seconds` on `devices` devices."""
    if seconds <= 0 or devices <= 0:
        raise ValueError(f"seconds and devices must be > 0, got {seconds}, {devices}")
    return flops_per_tok * tokens / seconds / devices / 1e12


def mfu(model_tflops_per_device: float, peak_tflops: float) -> float:
    """Model-FLOPs utilisation: achieved model TFLOP/s over the device's peak."""
    if peak_tflops <= 0:
        raise ValueError(f"peak_tflops must be > 0, got {peak_tflops}")
    return model_tflops_per_device / peak_tflops
