"""attention_impl="flex": compiled flex_attention with an ALiBi score_mod against the eager path.

Each (heads, head_dim) pair compiles its own kernel (about 10 s on CPU, 30 s for the first),
so the default run checks one pair and the model path; the full 3 x 3 matrix is marked slow.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from bloomberg_style.model import BloomForCausalLM, ModelConfig, alibi_bias, alibi_slopes
from bloomberg_style.model.attention import (
    causal_block_mask,
    choose,
    eager_attention,
    flex_attention,
    flex_import_error,
)

pytestmark = pytest.mark.skipif(flex_import_error() is not None, reason=str(flex_import_error()))


def check_parity(heads: int, head_dim: int, seq: int = 40) -> None:
    """Outputs and q/k/v gradients of flex within 1e-5 of eager, FP32, batch 1."""
    g = torch.Generator().manual_seed(heads * 1000 + head_dim)
    q, k, v = (torch.randn(1, heads, seq, head_dim, generator=g) for _ in range(3))
    grad_out = torch.randn(1, heads, seq, head_dim, generator=g)
    slopes = alibi_slopes(heads)
    results = []
    for path in ("eager", "flex"):
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        if path == "eager":
            out = eager_attention(*leaves, alibi_bias(slopes, seq), 0.0, None)
        else:
            out = flex_attention(*leaves, slopes, causal_block_mask(seq, torch.device("cpu")))
        out.backward(grad_out)
        results.append([out.detach()] + [t.grad for t in leaves])
    for name, ref, got in zip(("out", "dq", "dk", "dv"), *results):
        torch.testing.assert_close(
            got, ref, rtol=1e-5, atol=1e-5, msg=f"{name} heads={heads} head_dim={head_dim}"
        )


def test_flex_matches_eager_outputs_and_gradients() -> None:
    check_parity(8, 64)


@pytest.mark.slow
@pytest.mark.parametrize("heads", [8, 12, 40])
@pytest.mark.parametrize("head_dim", [64, 128, 192])
def test_flex_matches_eager_all_shapes(heads: int, head_dim: int) -> None:
    check_parity(heads, head_dim, seq=130)  # past one 128-row block: the block mask's partial blocks


def test_flex_model_matches_eager_model_loss_and_gradients() -> None:
    base = dict(vocab_size=97, hidden_size=64, num_layers=2, num_heads=2, max_seq_len=32)  # head_dim 32
    losses, grads = [], []
    for impl in ("eager", "flex"):
        torch.manual_seed(0)
        model = BloomForCausalLM(ModelConfig(**base, attention_impl=impl)).train()
        assert model.attention_choice("cpu").impl == impl
        ids = torch.randint(0, 97, (1, 24), generator=torch.Generator().manual_seed(1))
        loss = model(ids, labels=ids)
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad for n, p in model.named_parameters()})
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-5, msg=name)


def test_auto_reports_its_choice_and_flex_falls_back_with_dropout() -> None:
    cpu = choose("auto", torch.device("cpu"), torch.float32)
    assert cpu.impl == "sdpa" and "measured" in cpu.reason and "sdpa" in str(cpu)
    cuda = choose("auto", torch.device("cuda"), torch.float32)  # fp32: flash-attn cannot run
    assert cuda.impl == "flex" and "bf16" in cuda.reason
    with pytest.warns(RuntimeWarning, match="flex.*falls back to 'sdpa'.*dropout"):
        dropped = choose("flex", torch.device("cpu"), torch.float32, dropout_p=0.1)
    assert dropped.impl == "sdpa" and "dropout" in dropped.reason
    from bloomberg_style.model import attention

    assert attention.last_choice == dropped


def test_flex_blocks_compile_into_one_graph_without_breaks() -> None:
    """Regional compile (every block, aot_eager: capture + AOT autograd, no codegen) of the flex path,
    training on CPU: one graph for all layers, no graph break, the eager model's loss."""
    from torch._dynamo.utils import counters

    base = dict(
        vocab_size=97, hidden_size=64, num_layers=2, num_heads=2, attention_impl="flex"
    )  # head_dim 32
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    compiled = BloomForCausalLM(ModelConfig(**base, compile_blocks=True, compile_backend="aot_eager")).train()
    plain = BloomForCausalLM(ModelConfig(**base)).train()
    plain.load_state_dict(compiled.state_dict())
    ids = torch.randint(0, 97, (1, 24), generator=torch.Generator().manual_seed(2))
    loss = compiled(ids, labels=ids)
    loss.backward()
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]
    torch.testing.assert_close(loss, plain(ids, labels=ids), rtol=1e-5, atol=1e-6)


def test_cpu_flex_below_head_dim_32_falls_back_to_sdpa() -> None:
    """torch's compiled CPU flex kernel is wrong at head_dim 8 and 16 (NaN at seq 24): those
    models run sdpa, with the reason, and give the eager path's loss."""
    cpu = torch.device("cpu")
    with warnings.catch_warnings():  # warned once per reason and process
        warnings.simplefilter("ignore", RuntimeWarning)
        choice = choose("flex", cpu, torch.float32, head_dim=8)
    assert choice.impl == "sdpa" and "below head_dim 32 (this model has 8)" in choice.reason
    assert choose("flex", cpu, torch.float32, head_dim=32).impl == "flex"
    torch.manual_seed(0)
    shape = dict(vocab_size=97, hidden_size=64, num_layers=2, num_heads=8)  # head_dim 8
    flex = BloomForCausalLM(ModelConfig(**shape, attention_impl="flex"))
    eager = BloomForCausalLM(ModelConfig(**shape, attention_impl="eager"))
    eager.load_state_dict(flex.state_dict())
    ids = torch.randint(0, 97, (1, 24), generator=torch.Generator().manual_seed(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        loss = flex(ids, labels=ids)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, eager(ids, labels=ids), rtol=1e-5, atol=1e-6)
