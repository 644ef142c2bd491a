"""Cross-entropy over the vocabulary, softmax in FP32, with one [tokens, vocab] buffer.

The plain route, log_softmax then nll_loss, keeps the FP32 log-probabilities for the
backward pass and then allocates two more [tokens, vocab] tensors (nll's zero-filled
gradient, log_softmax's gradient) and exponentiates again. At the paper's vocabulary
each is 1 GiB per 2,048-token sequence. Here the forward keeps the FP32 probabilities p
and the backward turns them, in place, into the gradient (p - onehot(label)) * weight:
one buffer, one exp pass. The logits themselves are not kept (the LM head's backward
needs its input, not its output).

That buffer is consumed by the backward, so a graph through this loss can be
backpropagated once: a second backward (retain_graph=True) raises instead of
returning a wrong gradient.
"""

from __future__ import annotations

import torch

# Below this, -log(p) of the FP32 softmax loses precision (p is denormal or 0): those
# rows get the exact log-sum-exp form instead. It means a loss above ~69 nats on a token.
_UNDERFLOW = 1e-30


class SoftmaxCrossEntropy(torch.autograd.Function):
    """sum_i weight_i * (logsumexp(logits_i) - logits_i[label_i]); FP32 whatever the logits' dtype."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # logits [N, V] (fp32/bf16/fp16); labels [N] in [0, V); weight [N] FP32 (0 drops a row).
        probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
        picked = probs.gather(1, labels[:, None]).squeeze(1)
        nll = -torch.log(picked)
        tiny = picked < _UNDERFLOW
        if bool(tiny.any()):
            rows = tiny.nonzero().squeeze(1)
            x = logits[rows].float()
            nll[rows] = torch.logsumexp(x, dim=-1) - x.gather(1, labels[rows, None]).squeeze(1)
        ctx.save_for_backward(probs, labels, weight)
        ctx.logits_dtype = logits.dtype
        return (nll * weight).sum()

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        probs, labels, weight = ctx.saved_tensors
        grad = probs  # reused in place: p -> p - onehot -> (p - onehot) * weight * grad
        grad.scatter_add_(1, labels[:, None], torch.full_like(labels[:, None], -1, dtype=grad.dtype))
        grad.mul_((weight * grad_loss)[:, None])
        return grad.to(ctx.logits_dtype), None, None


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted sum of per-token FP32 cross-entropies. logits [N, V]; labels [N]; weight [N]."""
    return SoftmaxCrossEntropy.apply(logits, labels, weight)


# ---- LM head + cross-entropy, chunk by chunk -------------------------------------------------

# FP32 logits per chunk: 256 MiB, i.e. 512 tokens at the paper's 131,072 vocabulary (big enough
# that the grad_weight update per chunk is a real matmul), 8,192 tokens at the CPU demo's 8,192
# (one chunk for a whole micro-batch: no overhead where memory is no issue).
CHUNK_LOGIT_BYTES = 256 * 2**20


def chunk_tokens(vocab_size: int, chunk_bytes: int = CHUNK_LOGIT_BYTES) -> int:
    """Tokens per chunk so that one chunk's FP32 logits take about `chunk_bytes`."""
    return max(1, chunk_bytes // (4 * vocab_size))


def _chunk_grad(
    logits: torch.Tensor, lse: torch.Tensor, labels: torch.Tensor, coeff: torch.Tensor
) -> torch.Tensor:
    """d loss / d logits for one chunk, in place on the FP32 logits: (softmax - onehot) * coeff."""
    probs = logits.sub_(lse[:, None]).exp_()
    probs.scatter_add_(1, labels[:, None], torch.full_like(labels[:, None], -1, dtype=probs.dtype))
    return probs.mul_(coeff[:, None])


def _chunk_loss_and_grad(
    logits: torch.Tensor, labels: torch.Tensor, coeff: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(per-token nats [chunk], log-sum-exp [chunk], d loss / d logits if coeff is given) in one pass.

    In place on the chunk's FP32 logits, which the caller owns: subtract the row max,
    exponentiate once, and the same exponentials give the log-sum-exp (max + log of their sum)
    and, scaled by coeff / sum, the gradient (softmax - onehot) * coeff. logsumexp followed by
    a second exp would read, allocate and exponentiate [chunk, vocab] twice.
    """
    picked = logits.gather(1, labels[:, None]).squeeze(1)
    row_max = logits.amax(dim=-1)
    exps = logits.sub_(row_max[:, None]).exp_()
    total = exps.sum(dim=-1)
    lse = row_max + total.log()
    if coeff is None:
        return lse - picked, lse, None
    grad = exps.mul_((coeff / total)[:, None])
    grad.scatter_add_(1, labels[:, None], -coeff[:, None].to(grad.dtype))
    return lse - picked, lse, grad


class ChunkedLMHeadCrossEntropy(torch.autograd.Function):
    """sum_i w_i * CE(hidden_i @ weight^T, label_i), never holding more than one chunk of logits.

    Two ways to the gradient, the same numbers:
    - fused (recompute=False, the default): each chunk's gradient is taken while its logits
      exist, in the forward pass; grad_hidden [N, H] and grad_weight [V, H] are kept for the
      backward, which only scales them. No second LM-head matmul: the step costs what the
      unchunked loss costs.
    - recompute=True: the forward keeps only the log-sum-exp [N] and the backward recomputes
      each chunk's logits. Nothing of size [V, H] lives between forward and backward, at the
      price of one more [N, H] x [H, V] matmul.
    The softmax, log-sum-exp and loss are FP32 whatever the dtype of hidden and weight; the
    logits of a chunk are rounded to that dtype first, exactly as an LM head would output them.
    """

    @staticmethod
    def forward(ctx, hidden, weight, labels, token_weight, chunk: int, recompute: bool):
        # hidden [N, H]; weight [V, H]; labels [N] in [0, V); token_weight [N] FP32 (0 drops a row).
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        fused = need_grad and not recompute
        n = hidden.shape[0]
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        lse_all = torch.empty(n, dtype=torch.float32, device=hidden.device)
        if fused:
            grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
            grad_weight = None
        for start in range(0, n, chunk):
            h, y, w = (
                hidden[start : start + chunk],
                labels[start : start + chunk],
                token_weight[start : start + chunk],
            )
            logits = (h @ weight.t()).float()  # [chunk, V], a fresh tensor (a no-op cast in fp32)
            nats, lse, g = _chunk_loss_and_grad(logits, y, w if fused else None)
            total += (nats * w).sum()
            if fused:
                g = g.to(hidden.dtype)
                if grad_hidden is not None:
                    torch.matmul(g, weight, out=grad_hidden[start : start + chunk])
                if ctx.needs_input_grad[1]:  # the first chunk's product starts the sum: no zero fill
                    grad_weight = g.t() @ h if grad_weight is None else grad_weight.addmm_(g.t(), h)
            else:
                lse_all[start : start + chunk] = lse
            del logits, g
        ctx.fused, ctx.chunk = fused, chunk
        if fused:
            if ctx.needs_input_grad[1] and grad_weight is None:  # no tokens at all
                grad_weight = torch.zeros_like(weight)
            ctx.grads = (grad_hidden, grad_weight)  # not inputs or outputs: plain attributes are fine
        elif need_grad:
            ctx.save_for_backward(hidden, weight, labels, token_weight, lse_all)
        return total

    @staticmethod
    def backward(ctx, grad_loss):
        if ctx.fused:
            if ctx.grads is None:
                raise RuntimeError(
                    "the chunked LM-head loss was already backpropagated once (its gradients are freed)"
                )
            grad_hidden, grad_weight = ctx.grads
            ctx.grads = None
            scale = grad_loss.to(grad_hidden.dtype if grad_hidden is not None else grad_weight.dtype)
            # In place: nothing else holds these buffers (they were released from ctx above).
            return (
                None if grad_hidden is None else grad_hidden.mul_(scale),
                None if grad_weight is None else grad_weight.mul_(scale),
                None,
                None,
                None,
                None,
            )
        hidden, weight, labels, token_weight, lse_all = ctx.saved_tensors
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        coeff = token_weight * grad_loss
        for start in range(0, hidden.shape[0], ctx.chunk):
            sl = slice(start, start + ctx.chunk)
            logits = (hidden[sl] @ weight.t()).float()
            g = _chunk_grad(logits, lse_all[sl], labels[sl], coeff[sl]).to(hidden.dtype)
            if grad_hidden is not None:
                torch.matmul(g, weight, out=grad_hidden[sl])
            if grad_weight is not None:
                grad_weight.addmm_(g.t(), hidden[sl])
            del logits, g
        return grad_hidden, grad_weight, None, None, None, None


def lm_head_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    token_weight: torch.Tensor,
    chunk: int | None = None,
    recompute: bool = False,
) -> torch.Tensor:
    """Weighted sum of FP32 cross-entropies of the logits hidden @ weight^T, chunk by chunk.

    hidden [N, H]; weight [V, H] (the tied embedding); labels [N] in [0, V); token_weight [N].
    chunk: tokens per chunk (default from CHUNK_LOGIT_BYTES).
    """
    chunk = chunk or chunk_tokens(weight.shape[0])
    return ChunkedLMHeadCrossEntropy.apply(hidden, weight, labels, token_weight.float(), chunk, recompute)


@torch.no_grad()
def lm_head_token_nats(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, chunk: int | None = None
) -> torch.Tensor:
    """Per-token FP32 cross-entropy [N] (reduction='none'), chunk by chunk, for evaluation."""
    chunk = chunk or chunk_tokens(weight.shape[0])
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], chunk):
        logits = (hidden[start : start + chunk] @ weight.t()).float()
        out[start : start + chunk] = _chunk_loss_and_grad(logits, labels[start : start + chunk])[0]
    return out
