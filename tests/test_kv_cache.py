"""KV-cache generation equals re-reading the whole context: logits, greedy tokens, sampling,
left-padded batches, on every attention path (tiny random model, fp32). flex compiles its
kernel first (seconds on CPU), so its cases are slow-marked."""

from __future__ import annotations

import pytest
import torch

from bloomberg_style.model import BloomForCausalLM, ModelConfig
from bloomberg_style.model.alibi import alibi_bias, alibi_slopes
from bloomberg_style.model.attention import decoding_impl, eager_attention, sdpa_attention
from bloomberg_style.model.generate import greedy_generate, left_pad
from bloomberg_style.model.kv_cache import KVCache
from bloomberg_style.sft.generate import SamplingConfig, generate_ids
from tests.conftest import TINY


def tiny(impl: str = "sdpa", seed: int = 0, **overrides) -> BloomForCausalLM:
    torch.manual_seed(seed)
    return BloomForCausalLM(ModelConfig(**{**TINY, "attention_impl": impl, **overrides})).eval()


def test_alibi_bias_with_past_is_the_last_rows_of_the_full_bias():
    slopes = alibi_slopes(6)
    full = alibi_bias(slopes, 9)
    assert torch.equal(alibi_bias(slopes, 3, past_len=6), full[:, 6:])
    assert torch.equal(alibi_bias(slopes, 1, past_len=8), full[:, 8:])
    assert alibi_bias(slopes, 2, past_len=5).shape == (6, 2, 7)


@pytest.mark.parametrize("impl", ["eager", "sdpa", pytest.param("flex", marks=pytest.mark.slow)])
def test_cached_step_logits_equal_the_full_forward(impl):
    model = tiny(impl)
    ids = torch.randint(0, TINY["vocab_size"], (2, 21))
    with torch.no_grad():
        full = model(ids)
        cache = KVCache()
        first = model(ids[:, :13], cache=cache)  # the prompt: the configured kernel
        chunk = model(ids[:, 13:17], cache=cache)  # several new positions after cached ones
        steps = [model(ids[:, t : t + 1], cache=cache, logits_to_keep=1) for t in range(17, 21)]
    assert cache.length == 21
    torch.testing.assert_close(first, full[:, :13], rtol=0, atol=1e-5)
    torch.testing.assert_close(chunk, full[:, 13:17], rtol=0, atol=1e-5)
    for t, step in zip(range(17, 21), steps):
        assert step.shape == (2, 1, TINY["vocab_size"])
        torch.testing.assert_close(step[:, 0], full[:, t], rtol=0, atol=1e-5)


@pytest.mark.parametrize("impl", ["eager", "sdpa", pytest.param("flex", marks=pytest.mark.slow)])
def test_cached_greedy_equals_uncached_greedy_over_64_tokens(impl):
    model = tiny(impl, seed=1)
    prompt = torch.randint(0, TINY["vocab_size"], (3, 9))
    reference = tiny("eager", seed=1).generate(prompt, 64, use_cache=False)  # same weights, eager math
    cached = model.generate(prompt, 64)
    assert cached.shape == (3, 9 + 64)
    assert torch.equal(cached, reference)


def test_cache_grows_past_its_capacity():
    model = tiny()
    ids = torch.randint(0, TINY["vocab_size"], (1, 30))
    with torch.no_grad():
        full = model(ids)
        cache = KVCache(capacity=4)
        model(ids[:, :3], cache=cache)
        last = [model(ids[:, t : t + 1], cache=cache)[:, 0] for t in range(3, 30)]
    assert cache.keys[0].shape[2] >= 30
    torch.testing.assert_close(torch.stack(last, 1), full[:, 3:], rtol=0, atol=1e-5)


def test_left_padding_is_masked_out():
    model = tiny("eager")
    short = torch.randint(1, TINY["vocab_size"], (1, 5))
    ids, mask = left_pad([short[0].tolist(), list(range(1, 12))], pad_id=0)
    with torch.no_grad():
        alone = model(short)
        padded = model(ids, attention_mask=mask)
    torch.testing.assert_close(padded[0, -5:], alone[0], rtol=0, atol=1e-5)
    assert torch.isfinite(padded).all()  # padding rows see their own causal keys: no NaN
    with pytest.raises(ValueError, match="attention_mask must be"):
        model(ids, attention_mask=mask[:, 1:])


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_batched_greedy_equals_each_prompt_alone(impl):
    model = tiny(impl, seed=2)
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(1, 300, (n,), generator=g).tolist() for n in (3, 11, 7, 1, 16)]
    alone = [model.generate(torch.tensor([p]), 24, use_cache=False)[0, len(p) :].tolist() for p in prompts]
    batched = greedy_generate(model, prompts, 24, batch_size=3)
    assert batched == alone
    # A stop id cuts each answer before it; ids at or past vocab_limit are never picked.
    stop = alone[1][5]
    cut = greedy_generate(model, prompts, 24, stop_ids=(stop,))
    for got, ref in zip(cut, alone):
        assert got == (ref[: ref.index(stop)] if stop in ref else ref)
    limited = greedy_generate(model, prompts, 24, vocab_limit=100)
    assert all(t < 100 for answer in limited for t in answer)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        greedy_generate(model, [[1], []], 4)


def test_stop_when_ends_rows_and_the_batch_early():
    """A stop condition on the new ids (a stop string, in evaluation) keeps each answer up to the
    token that met it, and the batch stops decoding once every row has met it."""
    model = tiny("sdpa", seed=2)
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(1, 300, (n,), generator=g).tolist() for n in (3, 11, 7)]
    full = greedy_generate(model, prompts, 24)
    forwards = []
    hook = model.register_forward_hook(lambda *_: forwards.append(1))
    try:
        cut = greedy_generate(
            model, prompts, 24, stop_when=lambda new: len(new) >= 2 and new[-1] == new[-2] or len(new) == 4
        )
    finally:
        hook.remove()
    for got, ref in zip(cut, full):
        expected = next(ref[:n] for n in range(1, 25) if (n >= 2 and ref[n - 1] == ref[n - 2]) or n == 4)
        assert got == expected
    assert len(forwards) == max(len(a) for a in cut) < 24


def test_batched_greedy_on_a_transformers_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         eos_token_id=None, bos_token_id=None, pad_token_id=0)  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    prompts = [[5, 9, 3], [7, 1, 2, 8, 4, 6], [11]]
    alone = [greedy_generate(model, [p], 10)[0] for p in prompts]
    assert [len(a) for a in alone] == [10, 10, 10]
    assert greedy_generate(model, prompts, 10) == alone


def test_sampling_loop_uses_the_cache_and_gives_the_same_tokens():
    model = tiny(seed=3)
    prompt = list(range(3, 20))
    greedy = SamplingConfig(temperature=0, max_new_tokens=40)
    assert list(generate_ids(model, prompt, greedy)) == list(
        generate_ids(model, prompt, greedy, use_cache=False)
    )
    sampled = SamplingConfig(temperature=1.0, top_k=50, top_p=0.95, max_new_tokens=40, seed=7)
    a = list(generate_ids(model, prompt, sampled, vocab_limit=400))
    assert a == list(generate_ids(model, prompt, sampled, vocab_limit=400, use_cache=False))
    # A context window that slides mid-generation: the cached loop re-reads it, as the uncached one does.
    window = SamplingConfig(temperature=0, max_new_tokens=20, max_context=25)
    assert list(generate_ids(model, prompt, window)) == list(
        generate_ids(model, prompt, window, use_cache=False)
    )


def test_cached_decoding_in_bfloat16_runs_eager_layer_scaling():
    model = tiny("eager", seed=4).to(torch.bfloat16)
    prompt = torch.randint(0, TINY["vocab_size"], (2, 6))
    with torch.no_grad():
        full = model(torch.cat([prompt, prompt[:, :1]], 1))[:, -1].float()
        cache = KVCache()
        model(prompt, cache=cache)
        step = model(prompt[:, :1], cache=cache)[:, -1].float()
    assert cache.keys[0].dtype == torch.bfloat16
    torch.testing.assert_close(step, full, rtol=0, atol=0.05)


def test_sdpa_takes_decoding_biases_as_eager_does():
    """CUDA decodes on sdpa (CPU on eager, attention.decoding_impl): the same bias shapes, the same math."""
    model = tiny()
    q, k, v = (torch.randn(2, TINY["num_heads"], n, 16) for n in (3, 10, 10))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, :4] = 0
    for attention_mask in (None, mask):
        bias = model.decoding_bias("eager", 3, 7, attention_mask, torch.float32, torch.device("cpu"))
        assert bias.shape == ((2,) if attention_mask is not None else ()) + (TINY["num_heads"], 3, 10)
        expected = eager_attention(q, k, v, bias, 0.0, None)
        torch.testing.assert_close(sdpa_attention(q, k, v, bias, 0.0), expected, rtol=0, atol=1e-5)
    assert decoding_impl("flex", torch.device("cuda")) == "sdpa"
    assert decoding_impl("flash", torch.device("cuda")) == "sdpa"
    assert decoding_impl("sdpa", torch.device("cpu")) == "eager"
