"""Causal ALiBi attention, three ways: softmax(q.k^T / sqrt(d) - slope*(i-j)) v.

- eager: the math spelled out, scores and softmax in FP32, query-key layer scaling. The
  reference the others are tested against.
- sdpa: torch.nn.functional.scaled_dot_product_attention with the ALiBi bias as a float
  mask [1, heads, s, s]; that 4-D mask lets torch pick its fused kernels (flash on CPU,
  memory-efficient on CUDA), which never materialise the scores and accumulate the
  softmax in FP32 whatever the input dtype.
- flash: flash-attention 2's `alibi_slopes` (CUDA, bf16/fp16): the bias is computed in
  the kernel from the slopes, so nothing [s, s] exists at all.

Query-key layer scaling only matters where the q.k^T product is stored in 16 bits (eager
bf16/fp16): the fused kernels keep it in FP32 registers, so they take the plain scale.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F


def eager_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor,
    dropout_p: float,
    layer_number: int | None,
) -> torch.Tensor:
    """q, k, v [batch, heads, seq, head_dim]; bias FP32 [heads, seq, seq] -> [batch, heads, seq, head_dim].

    layer_number (1-based) turns on query-key layer scaling: q.k^T is computed divided by
    layer_number in the compute dtype (so deep layers' scores stay in fp16 range) and
    multiplied back in FP32, where the softmax runs. In FP32 compute it is the identity, so skipped.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    if q.dtype == torch.float32:
        scores = torch.matmul(q * scale, k.transpose(-2, -1))
        scores.add_(bias)  # [batch, heads, seq, seq]; in place on a fresh tensor: one pass, no copy
    else:
        coeff = float(layer_number or 1)
        low = torch.matmul(q * (scale / coeff), k.transpose(-2, -1))  # 16-bit, 1/layer of the range
        scores = torch.add(bias, low, alpha=coeff)  # FP32 bias + layer * low, in one pass
    probs = F.softmax(scores, dim=-1).to(v.dtype)
    probs = F.dropout(probs, p=dropout_p, training=dropout_p > 0)
    return torch.matmul(probs, v)


def sdpa_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, dropout_p: float
) -> torch.Tensor:
    """q, k, v [batch, heads, seq, head_dim]; bias [heads, seq, seq] in q's dtype."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0), dropout_p=dropout_p)


def flash_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, slopes: torch.Tensor, dropout_p: float
) -> torch.Tensor:
    """q, k, v [batch, seq, heads, head_dim] (flash-attn's layout); slopes FP32 [heads].

    flash-attn adds -slope * |i - j|; with causal=True only j <= i is kept: exactly ALiBi.
    """
    from flash_attn import flash_attn_func

    return flash_attn_func(q, k, v, dropout_p=dropout_p, causal=True, alibi_slopes=slopes)


@functools.cache
def flash_import_error() -> str | None:
    """None when flash-attn 2 with ALiBi support imports, else why not."""
    try:
        import inspect

        from flash_attn import flash_attn_func
    except Exception as err:  # ImportError, or a broken CUDA extension
        return f"flash_attn does not import ({type(err).__name__}: {err})"
    if "alibi_slopes" not in inspect.signature(flash_attn_func).parameters:
        return "the installed flash_attn has no alibi_slopes (needs flash-attn >= 2.4)"
    return None


def flash_unavailable_reason(device: torch.device, dtype: torch.dtype) -> str | None:
    """None when the flash path can run for tensors on `device` in `dtype`, else why not."""
    if device.type != "cuda":
        return f"flash-attention needs CUDA tensors, got {device.type}"
    if dtype not in (torch.float16, torch.bfloat16):
        return f"flash-attention needs bf16 or fp16, got {dtype}"
    return flash_import_error()


_warned: set[str] = set()


def resolve_impl(impl: str, device: torch.device, dtype: torch.dtype) -> str:
    """The path that runs: "auto" -> flash or sdpa; "flash" falls back to sdpa with one warning."""
    if impl not in ("auto", "flash"):
        return impl
    reason = flash_unavailable_reason(device, dtype)
    if reason is None:
        return "flash"
    if impl == "flash" and reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"attention_impl='flash' falls back to 'sdpa': {reason}", RuntimeWarning, stacklevel=3)
    return "sdpa"
