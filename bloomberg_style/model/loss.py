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
