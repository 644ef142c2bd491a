"""The chunked LM-head loss: same loss and gradients as logits + the fused cross-entropy, in chunks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bloomberg_style.model import BloomForCausalLM, ModelConfig
from bloomberg_style.model.loss import cross_entropy, lm_head_cross_entropy, lm_head_token_nats


def problem(n: int = 37, hidden: int = 16, vocab: int = 101, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, hidden, generator=g)
    w = torch.randn(vocab, hidden, generator=g) * 0.5
    labels = torch.randint(0, vocab, (n,), generator=g)
    weight = torch.rand(n, generator=g)
    weight[::5] = 0.0  # ignored / masked rows
    return h, w, labels, weight / weight.sum()


def reference(h, w, labels, weight):
    """The current loss: full logits, then loss.py's fused softmax cross-entropy."""
    h, w = h.clone().requires_grad_(), w.clone().requires_grad_()
    loss = cross_entropy(h @ w.t(), labels, weight)
    loss.backward()
    return loss.detach(), h.grad, w.grad


@pytest.mark.parametrize("recompute", [False, True])
@pytest.mark.parametrize("chunk", [1, 8, 37, 1000])
def test_chunked_loss_and_gradients_equal_the_full_loss(chunk: int, recompute: bool) -> None:
    h, w, labels, weight = problem()
    ref_loss, ref_gh, ref_gw = reference(h, w, labels, weight)
    hc, wc = h.clone().requires_grad_(), w.clone().requires_grad_()
    loss = lm_head_cross_entropy(hc, wc, labels, weight, chunk=chunk, recompute=recompute)
    (loss * 3.0).backward()  # a non-unit upstream gradient (loss scaling) is honoured
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.detach(), ref_loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(hc.grad, 3.0 * ref_gh, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(wc.grad, 3.0 * ref_gw, rtol=1e-6, atol=1e-6)
    assert hc.grad[::5].abs().max() == 0  # weight-0 rows get no gradient


def test_chunked_loss_is_exact_where_the_softmax_underflows() -> None:
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w = torch.tensor([[200.0, 0.0], [0.0, 0.0], [-200.0, 0.0]])
    labels = torch.tensor([2, 1])
    loss = lm_head_cross_entropy(h, w, labels, torch.ones(2), chunk=1)
    expected = F.cross_entropy((h @ w.t()).double(), labels, reduction="sum")
    assert torch.isfinite(loss) and loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_per_token_nats_match_cross_entropy_without_reduction() -> None:
    h, w, labels, _ = problem(seed=1)
    nats = lm_head_token_nats(h, w, labels, chunk=5)
    torch.testing.assert_close(
        nats, F.cross_entropy(h @ w.t(), labels, reduction="none"), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("recompute", [False, True])
def test_no_tokens_give_zero_loss_and_zero_gradients(recompute: bool) -> None:
    h, w = torch.zeros(0, 16, requires_grad=True), torch.randn(101, 16, requires_grad=True)
    loss = lm_head_cross_entropy(h, w, torch.zeros(0, dtype=torch.long), torch.zeros(0), recompute=recompute)
    loss.backward()
    assert loss.item() == 0.0 and h.grad.shape == (0, 16)
    assert w.grad is not None and w.grad.abs().max() == 0


def test_second_backward_raises_instead_of_a_wrong_gradient() -> None:
    h, w, labels, weight = problem()
    loss = lm_head_cross_entropy(h.requires_grad_(), w, labels, weight, chunk=8)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="already backpropagated"):
        loss.backward()


def test_model_loss_uses_the_chunked_head_with_tied_weight_gradient() -> None:
    """forward(labels=...) equals logits + the current loss, and the tied embedding's gradient
    (LM head + embedding lookup) is the same, with -100 labels and a loss mask."""
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=97, hidden_size=32, num_layers=2, num_heads=4, attention_impl="eager")
    model = BloomForCausalLM(cfg).train()
    ids = torch.randint(0, 97, (3, 12))
    labels = torch.randint(0, 97, (3, 12))
    labels[:, :3] = -100
    loss_mask = (torch.rand(3, 12) > 0.3).float()

    def grads(loss):
        model.zero_grad(set_to_none=True)
        loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    ref_loss = model.loss(model(ids), labels, loss_mask)
    ref = grads(ref_loss)
    loss = model(ids, labels=labels, loss_mask=loss_mask)
    new = grads(loss)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-6)
    assert "transformer.word_embeddings.weight" in new
    for name in ref:
        torch.testing.assert_close(new[name], ref[name], rtol=1e-5, atol=1e-6, msg=name)


def test_bf16_chunks_keep_fp32_softmax() -> None:
    h, w, labels, weight = problem(seed=2)
    h16, w16 = h.bfloat16(), w.bfloat16()
    loss = lm_head_cross_entropy(h16.requires_grad_(), w16.requires_grad_(), labels, weight, chunk=8)
    loss.backward()
    exact = (F.cross_entropy((h16 @ w16.t()).float(), labels, reduction="none") * weight).sum()
    assert loss.dtype == torch.float32 and h16.grad.dtype == torch.bfloat16
    assert loss.item() == pytest.approx(exact.item(), rel=1e-5)
