"""ALiBi: attention with linear biases instead of position embeddings (Press et al. 2021).

Head h adds -slope_h * (i - j) to the score of query i for key j, so attention
decays linearly with distance and the model runs at lengths it never saw.
"""

from __future__ import annotations

import math

import torch


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """Per-head slopes [num_heads], float32, as in the ALiBi paper and BLOOM.

    With n the largest power of two <= num_heads, the first n slopes are the
    geometric sequence 2^(-8i/n), i = 1..n. The remaining heads take every other
    slope of the 2n-head sequence, 2^(-8i/(2n)) for odd i = 1, 3, 5, ...
    For 40 heads: 2^(-k/4), k = 1..32, then 2^(-1/8), 2^(-3/8), ..., 2^(-15/8).
    """
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads <= 0:
        raise ValueError(f"num_heads must be a positive integer, got {num_heads!r}")
    n = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = [2.0 ** (-8.0 * i / n) for i in range(1, n + 1)]
    remaining = num_heads - n  # < n, since n is the largest power of two <= num_heads
    slopes += [2.0 ** (-8.0 * i / (2 * n)) for i in range(1, 2 * remaining, 2)]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(
    slopes: torch.Tensor,
    seq_len: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    past_len: int = 0,
) -> torch.Tensor:
    """Causal ALiBi bias [heads, seq_len, past_len + seq_len]: -slope*(i-j) for j <= i, -inf for j > i.

    The queries are the last seq_len positions (past_len keys come before them, as in a KV
    cache), so query row r sits at position past_len + r. Relative distances (not absolute
    key positions) keep the values near the diagonal small, so they stay exact in bf16
    where they matter most.
    """
    queries = torch.arange(past_len, past_len + seq_len, device=device)
    keys = torch.arange(past_len + seq_len, device=device)
    distance = (queries[:, None] - keys[None, :]).to(torch.float32)  # [q, k], i - j
    bias = -slopes.to(device=device, dtype=torch.float32)[:, None, None] * distance
    future = distance < 0
    bias = bias.masked_fill(future, float("-inf"))
    return bias.to(dtype)
