"""FLOPs per token, achieved TFLOP/s and model-FLOPs utilisation (MFU).

A dense decoder with N parameters costs 2N FLOPs per token forward (one multiply-add per
weight; the tied LM head is counted once, as V*D in N, and the embedding lookup is free)
and 4N backward: 6N. Recomputing activations (checkpointing every layer) repeats the
forward: 8N. Attention scores add two matmuls per layer that N does not see, q.k^T and
probs.v, each 2*s*D FLOPs per token forward: 4*L*s*D forward, 12*L*s*D forward+backward,
16*L*s*D with recompute (PaLM, appendix B, counts the same 12*L*s*D; causal masking halves
the useful part, but the dense kernels do the full product).

BloombergGPT's "102 TFLOP/s" is the plain 8N count: 8 * 50,558,868,480 FLOPs/token *
2,048 * 2,048 tokens / 32.5 s / 512 GPUs = 101.95 TFLOP/s. With the attention term it is
106.39; the model FLOPs (6N + 12*L*s*D, no recompute) are 79.79 TFLOP/s, an MFU of 25.6% on
A100's 312, and a hardware utilisation (8N + 16*L*s*D) of 34.1%.

MFU counts model FLOPs only, never the recompute (Chowdhery et al. 2022, PaLM, section 4.1).
"""

from __future__ import annotations

from typing import Protocol

from .accelerators import ACCELERATORS


class _Shape(Protocol):
    num_layers: int
    hidden_size: int


def flops_per_token(
    cfg: _Shape, num_parameters: int, seq_len: int, *, recompute: bool = False, include_attention: bool = True
) -> float:
    """Training FLOPs (forward + backward, + recomputed forward if `recompute`) per token."""
    if num_parameters <= 0 or seq_len <= 0:
        raise ValueError(f"num_parameters and seq_len must be > 0, got {num_parameters}, {seq_len}")
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


def model_flops_utilization(
    cfg: _Shape,
    num_parameters: int,
    seq_len: int,
    tokens_per_second: float,
    peak_tflops: float,
    devices: int = 1,
) -> float:
    """MFU of a run: (6N + 12*L*s*D) * tokens/s / devices / peak. Recompute is not counted."""
    model_tflops = achieved_tflops(
        flops_per_token(cfg, num_parameters, seq_len), tokens_per_second, 1.0, devices
    )
    return mfu(model_tflops, peak_tflops)


# Dense BF16 peaks per device: the planner's accelerator table (accelerators.py, with sources).
PEAK_TFLOPS: dict[str, float] = {name: acc.peak_bf16_tflops for name, acc in ACCELERATORS.items()}

# torch.cuda.get_device_name() substrings -> PEAK_TFLOPS key; first match wins, so the
# specific names ("H100 PCIe", "H100 NVL") come before the generic "H100".
_DEVICE_NAMES = (
    ("H200", "h200"),
    ("H100 PCIe", "h100-pcie"),
    ("H100 NVL", "h100-nvl"),
    ("H100", "h100-sxm"),
    ("A100-SXM4-80GB", "a100-80gb"),
    ("A100 80GB", "a100-80gb"),
    ("A100-PCIE-80GB", "a100-80gb"),
    ("A100", "a100-40gb"),
    ("B200", "b200"),
    ("L40S", "l40s"),
    ("MI250X", "mi250x"),
    ("MI300X", "mi300x"),
)


def peak_tflops(device: str) -> float:
    """Peak dense BF16 TFLOP/s of a PEAK_TFLOPS key ("h100-sxm") or a CUDA device name."""
    key = device.strip().lower()
    if key in PEAK_TFLOPS:
        return PEAK_TFLOPS[key]
    for pattern, name in _DEVICE_NAMES:
        if pattern.lower() in key:
            return PEAK_TFLOPS[name]
    raise ValueError(
        f"unknown device {device!r}; known: {', '.join(PEAK_TFLOPS)} (or pass the peak yourself)"
    )


def detect_peak_tflops() -> float | None:
    """The peak of the current CUDA device, or None (no GPU, or a GPU not in the table)."""
    import torch

    if not torch.cuda.is_available():
        return None
    try:
        return peak_tflops(torch.cuda.get_device_name())
    except ValueError:
        return None
