"""Causal ALiBi attention, four ways: softmax(q.k^T / sqrt(d) - slope*(i-j)) v.

- eager: the math spelled out, scores and softmax in FP32, query-key layer scaling. The
  reference the others are tested against.
- sdpa: torch.nn.functional.scaled_dot_product_attention with the ALiBi bias as a float
  mask [1, heads, s, s]; that 4-D mask lets torch pick its fused kernels (flash on CPU,
  memory-efficient on CUDA), which never materialise the scores and accumulate the
  softmax in FP32 whatever the input dtype.
- flash: flash-attention 2's `alibi_slopes` (CUDA, bf16/fp16): the bias is computed in
  the kernel from the slopes, so nothing [s, s] exists at all.
- flex: torch.nn.attention.flex_attention, compiled, with ALiBi as a score_mod and a causal
  block mask (fully masked blocks are skipped): a fused kernel that needs nothing beyond
  PyTorch. On CUDA torch generates forward and backward (Triton). On CPU torch's compiled
  flex is inference-only, so training takes the compiled forward and a backward written
  here that recomputes the probabilities one query block at a time (FlashAttention's
  backward, in eager torch).

`choose` says which path runs and why, and `last_choice` keeps the most recent answer so
that a trainer can print and log it. Generation with a KV cache (kv_cache.py) runs
its decoding steps and padded batches on eager or sdpa (`decoding_impl`).

Query-key layer scaling only matters where the q.k^T product is stored in 16 bits (eager
bf16/fp16): the fused kernels keep it in FP32 registers, so they take the plain scale.
"""

from __future__ import annotations

import dataclasses
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
    """q, k, v [batch, heads, seq, head_dim] (k, v may hold more positions: a KV cache); bias FP32
    [heads, seq, keys] or [batch, heads, seq, keys] -> [batch, heads, seq, head_dim].

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
    """q, k, v [batch, heads, seq, head_dim]; bias [heads, seq, keys] (or [batch, heads, seq, keys]
    for a padded batch) in q's dtype."""
    mask = bias if bias.dim() == 4 else bias.unsqueeze(0)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


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


# ---- flex ---------------------------------------------------------------------------------

# Query rows per step of the CPU backward: bounds its FP32 [batch, heads, rows, seq] scratch.
FLEX_CPU_BACKWARD_ROWS = 256


@functools.cache
def flex_import_error() -> str | None:
    """None when torch.nn.attention.flex_attention imports, else why not."""
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention  # noqa: F401
    except Exception as err:
        return f"torch {torch.__version__} has no flex_attention ({type(err).__name__}: {err})"
    return None


@functools.cache
def _compiled_flex():
    """flex_attention is a fused kernel only under torch.compile (eager flex is a reference loop)."""
    from torch.nn.attention.flex_attention import flex_attention as flex

    return torch.compile(flex, dynamic=False)


def _causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def causal_block_mask(seq_len: int, device: torch.device):
    """The causal BlockMask for [seq_len, seq_len], shared by all heads and batch rows."""
    from torch.nn.attention.flex_attention import create_block_mask

    # Positional arguments: the signature (mask_mod, B, H, Q_LEN, KV_LEN, device) is the same
    # in torch 2.5 to 2.13; device is passed because older versions default to "cuda".
    return create_block_mask(_causal, None, None, seq_len, seq_len, device=device)


def alibi_score_mod(slopes: torch.Tensor):
    """score_mod adding -slope_h * (i - j); FP32 slopes, scores are FP32 inside the kernel."""

    def score_mod(score, b, h, q_idx, kv_idx):
        return score - slopes[h] * (q_idx - kv_idx).to(score.dtype)

    return score_mod


def _flex_forward(q, k, v, slopes, block_mask):
    return _compiled_flex()(q, k, v, score_mod=alibi_score_mod(slopes), block_mask=block_mask)


class _FlexCPUTraining(torch.autograd.Function):
    """Compiled flex forward (CPU inference kernel) + a blockwise recomputing backward."""

    @staticmethod
    def forward(ctx, q, k, v, slopes, block_mask):
        with torch.no_grad():  # detached: torch refuses CPU flex on tensors that require grad
            out = _flex_forward(q.detach(), k.detach(), v.detach(), slopes, block_mask)
        ctx.save_for_backward(q, k, v, out, slopes)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, slopes = ctx.saved_tensors
        scale = 1.0 / math.sqrt(q.shape[-1])
        seq = q.shape[-2]
        kf, vf = k.float(), v.float()
        dq = torch.empty_like(q, dtype=torch.float32)
        dk = torch.zeros_like(k, dtype=torch.float32)
        dv = torch.zeros_like(v, dtype=torch.float32)
        keys = torch.arange(seq, device=q.device)
        # delta_i = sum_d dO_id O_id: the softmax backward's row term.
        delta = (grad_out.float() * out.float()).sum(-1, keepdim=True)
        for start in range(0, seq, FLEX_CPU_BACKWARD_ROWS):
            rows = slice(start, min(seq, start + FLEX_CPU_BACKWARD_ROWS))
            stop = rows.stop  # causal: keys after the block's last query get no weight
            qb, dob = q[:, :, rows].float(), grad_out[:, :, rows].float()
            distance = (torch.arange(start, stop, device=q.device)[:, None] - keys[None, :stop]).float()
            bias = (-slopes[:, None, None] * distance).masked_fill(distance < 0, float("-inf"))
            probs = torch.softmax(torch.matmul(qb * scale, kf[:, :, :stop].transpose(-2, -1)) + bias, dim=-1)
            dv[:, :, :stop] += torch.matmul(probs.transpose(-2, -1), dob)
            dscores = probs * (torch.matmul(dob, vf[:, :, :stop].transpose(-2, -1)) - delta[:, :, rows])
            dq[:, :, rows] = torch.matmul(dscores, kf[:, :, :stop]) * scale
            dk[:, :, :stop] += torch.matmul(dscores.transpose(-2, -1), qb) * scale
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, None


def flex_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, slopes: torch.Tensor, block_mask
) -> torch.Tensor:
    """q, k, v [batch, heads, seq, head_dim]; slopes FP32 [heads]; block_mask from causal_block_mask."""
    if (
        q.device.type == "cpu"
        and torch.is_grad_enabled()
        and (q.requires_grad or k.requires_grad or v.requires_grad)
    ):
        return _FlexCPUTraining.apply(q, k, v, slopes, block_mask)
    return _flex_forward(q, k, v, slopes, block_mask)


# ---- which path runs ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AttentionChoice:
    """The path that runs for a requested attention_impl, and why (printed and logged by trainers)."""

    requested: str
    impl: str
    reason: str

    def __str__(self) -> str:
        return f"attention_impl={self.requested} -> {self.impl} ({self.reason})"


# What `auto` takes on CPU, measured with benchmarks/attention_speed.py (docs/model.md): a
# training step (forward + backward) at the demo shapes is fastest with sdpa there.
CPU_AUTO = "sdpa"
# What decoding steps take on CPU: with one query per row, eager beat sdpa's CPU kernel
# (tokens/s of benchmarks/generation_speed.py on the tiny preset, docs/model.md).
CPU_DECODING = "eager"

last_choice: AttentionChoice | None = None
_warned: set[str] = set()


def choose(
    impl: str, device: torch.device, dtype: torch.dtype, dropout_p: float = 0.0, head_dim: int = 0
) -> AttentionChoice:
    """The path that runs and why. auto: on CUDA flash-attn 2 if it runs, else flex, else sdpa; on
    CPU the measured fastest (CPU_AUTO). flash and flex fall back to sdpa with one warning."""
    global last_choice
    if impl == "auto" and device.type != "cuda":
        choice = AttentionChoice(
            impl, CPU_AUTO, f"{device.type}: {CPU_AUTO} measured fastest (docs/model.md)"
        )
    elif impl == "auto":
        flash_no = flash_unavailable_reason(device, dtype)
        flex_no = flex_unavailable_reason(dropout_p, device, head_dim)
        if flash_no is None:
            choice = AttentionChoice(impl, "flash", "flash-attn 2 imports and runs on this device and dtype")
        elif flex_no is None:
            choice = AttentionChoice(impl, "flex", f"flex_attention, since {flash_no}")
        else:
            choice = AttentionChoice(impl, "sdpa", f"{flash_no}; {flex_no}")
    elif impl in ("flash", "flex"):
        why_not = (
            flash_unavailable_reason(device, dtype)
            if impl == "flash"
            else flex_unavailable_reason(dropout_p, device, head_dim)
        )
        if why_not is None:
            choice = AttentionChoice(impl, impl, "as configured")
        else:
            choice = AttentionChoice(impl, "sdpa", f"fallback: {why_not}")
            if why_not not in _warned:
                _warned.add(why_not)
                warnings.warn(
                    f"attention_impl='{impl}' falls back to 'sdpa': {why_not}", RuntimeWarning, stacklevel=3
                )
    else:
        choice = AttentionChoice(impl, impl, "as configured")
    last_choice = choice
    return choice


# torch 2.13's compiled CPU flex kernel returns wrong values or NaN for head_dim 8 and 16 at
# sequence lengths under 128 (measured against the eager reference: seq 8-88 at head_dim 8/16
# wrong, head_dim 32-192 right at every length tried); below this head_dim CPU runs sdpa.
FLEX_CPU_MIN_HEAD_DIM = 32


def flex_unavailable_reason(
    dropout_p: float, device: torch.device | None = None, head_dim: int = 0
) -> str | None:
    """None when the flex path can run, else why not (head_dim 0: not checked)."""
    if dropout_p > 0:
        return f"flex_attention has no attention dropout (attention_dropout={dropout_p})"
    if device is not None and device.type == "cpu" and 0 < head_dim < FLEX_CPU_MIN_HEAD_DIM:
        return (
            f"torch's CPU flex_attention kernel is wrong below head_dim {FLEX_CPU_MIN_HEAD_DIM} "
            f"(this model has {head_dim})"
        )
    return flex_import_error()


def decoding_impl(impl: str, device: torch.device) -> str:
    """The path for attention that is not square, causal and unpadded: decoding steps against
    a KV cache (new queries, more keys) and left-padded batches. eager and sdpa take a bias of
    any shape; flash and flex hand these to sdpa (flex would recompile for every new key
    length, and flash-attn takes no padding mask). A decoding step has one query per row, so
    its cost is reading the cache; on CPU eager does that faster than sdpa's kernel (CPU_DECODING,
    measured with benchmarks/generation_speed.py). A cache's first forward (the prompt,
    unpadded) still runs the configured kernel."""
    if device.type == "cpu":
        return CPU_DECODING
    return "sdpa" if impl in ("flash", "flex") else impl


def resolve_impl(
    impl: str, device: torch.device, dtype: torch.dtype, dropout_p: float = 0.0, head_dim: int = 0
) -> str:
    """The path that runs (choose(...).impl)."""
    return choose(impl, device, dtype, dropout_p, head_dim).impl
