"""The BLOOM decoder: ALiBi, parameter count, init, causality, attention paths, loss, controls."""

from __future__ import annotations

import math
import shutil
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.utils import counters

from bloomberg_style.model import (
    PRESETS,
    BloomForCausalLM,
    ModelConfig,
    alibi_bias,
    alibi_slopes,
    param_groups,
)
from bloomberg_style.model import attention as attention_module
from bloomberg_style.model.attention import flash_import_error, flash_unavailable_reason, resolve_impl
from bloomberg_style.model.loss import cross_entropy
from bloomberg_style.sizing.measure import cpu_peak_supported, peak_memory_bytes, saved_activation_bytes

pytestmark = pytest.mark.usefixtures("one_thread")


def small_config(**overrides) -> ModelConfig:
    base = dict(vocab_size=97, hidden_size=48, num_layers=3, num_heads=6, max_seq_len=32)
    return ModelConfig(**{**base, **overrides})


def build(seed: int = 0, **overrides) -> BloomForCausalLM:
    torch.manual_seed(seed)
    return BloomForCausalLM(small_config(**overrides)).eval()


# ---- ALiBi ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heads, expected",
    [
        (8, [2.0**-i for i in range(1, 9)]),
        # 12 = 8 + 4: the 8-head sequence, then odd terms of the 16-head one, 2^(-i/2), i = 1, 3, 5, 7.
        (12, [2.0**-i for i in range(1, 9)] + [2.0 ** (-i / 2) for i in (1, 3, 5, 7)]),
        # The paper's 40 heads: 2^(-n/4) for n = 1..32, then 2^(-1/8), 2^(-3/8), ..., 2^(-15/8).
        (40, [2.0 ** (-n / 4) for n in range(1, 33)] + [2.0 ** (-k / 8) for k in range(1, 16, 2)]),
    ],
)
def test_alibi_slopes_closed_form(heads: int, expected: list[float]) -> None:
    slopes = alibi_slopes(heads)
    assert slopes.shape == (heads,) and slopes.dtype == torch.float32
    torch.testing.assert_close(slopes, torch.tensor(expected, dtype=torch.float32), rtol=0, atol=0)


@pytest.mark.parametrize("heads", [1, 2, 3, 5, 6, 8, 12, 16, 20, 24, 40, 64, 112])
def test_alibi_matches_transformers_bloom(heads: int) -> None:
    modeling_bloom = pytest.importorskip("transformers.models.bloom.modeling_bloom")
    seq = 9
    hf = modeling_bloom.build_alibi_tensor(torch.ones(1, seq, dtype=torch.long), heads, torch.float32)
    hf = hf.reshape(heads, seq)  # slope_h * key_position
    torch.testing.assert_close(alibi_slopes(heads), hf[:, 1], rtol=1e-6, atol=0)
    # Same attention after softmax: rows agree up to a per-row constant on the causal part.
    ours = alibi_bias(alibi_slopes(heads), seq)
    for i in range(seq):
        torch.testing.assert_close(ours[:, i, : i + 1] - ours[:, i, :1], hf[:, : i + 1] - hf[:, :1])


def test_alibi_bias_is_causal_and_linear() -> None:
    slopes = alibi_slopes(4)
    bias = alibi_bias(slopes, 5, dtype=torch.bfloat16)
    assert bias.shape == (4, 5, 5) and bias.dtype == torch.bfloat16
    upper = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
    assert torch.isneginf(bias[:, upper]).all()
    assert (bias.float()[:, ~upper] <= 0).all()
    assert bias[:, 4, 1].float().tolist() == pytest.approx((-3 * slopes).tolist(), rel=1e-2)
    assert torch.equal(torch.diagonal(bias, dim1=1, dim2=2), torch.zeros(4, 5, dtype=torch.bfloat16))


def test_alibi_slopes_reject_bad_heads() -> None:
    with pytest.raises(ValueError, match="num_heads"):
        alibi_slopes(0)


# ---- size and init --------------------------------------------------------------------------


def test_bloomberggpt_50b_parameter_count_on_meta() -> None:
    cfg = ModelConfig.preset("bloomberggpt-50b")
    assert (cfg.num_layers, cfg.num_heads, cfg.hidden_size, cfg.vocab_size) == (70, 40, 7680, 131072)
    assert cfg.head_dim == 192 and cfg.ffn_hidden_size == 30720
    with torch.device("meta"):
        model = BloomForCausalLM(cfg)
    d, v = 7680, 131072
    assert model.num_parameters() == 50_558_868_480
    assert model.num_parameters() == 70 * (12 * d * d + 13 * d) + v * d + 4 * d == cfg.num_parameters()
    assert model.lm_head.weight is model.transformer.word_embeddings.weight


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_count_matches_formula(name: str) -> None:
    cfg = ModelConfig.preset(name)
    with torch.device("meta"):
        model = BloomForCausalLM(cfg)
    assert model.num_parameters() == cfg.num_parameters()


def test_paper_init_std_and_residual_scaling() -> None:
    assert ModelConfig.preset("bloomberggpt-50b").initializer_std == pytest.approx(0.006588, abs=5e-7)
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=4096, hidden_size=512, num_layers=8, num_heads=8)
    model = BloomForCausalLM(cfg)
    std = math.sqrt(1 / (3 * 512))
    out_std = std / math.sqrt(2 * 8)
    block = model.transformer.h[3]
    checks = {
        "embedding": (model.transformer.word_embeddings.weight, std),
        "qkv": (block.self_attention.query_key_value.weight, std),
        "h_to_4h": (block.mlp.dense_h_to_4h.weight, std),
        "attn out": (block.self_attention.dense.weight, out_std),
        "4h_to_h": (block.mlp.dense_4h_to_h.weight, out_std),
    }
    for name, (w, expected) in checks.items():
        assert w.std().item() == pytest.approx(expected, rel=0.02), name
        assert abs(w.mean().item()) < 3 * expected / math.sqrt(w.numel()) + 1e-6, name
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert torch.count_nonzero(p) == 0, name
        elif "layernorm" in name or "ln_f" in name:
            assert torch.all(p == 1), name


# ---- forward --------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["eager", "sdpa", "auto"])
def test_causal_future_tokens_do_not_change_past_logits(impl: str) -> None:
    model = build(attention_impl=impl)
    ids = torch.randint(0, 97, (2, 20))
    changed = ids.clone()
    changed[:, 12] = (changed[:, 12] + 1) % 97
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert a.shape == (2, 20, 97)
    torch.testing.assert_close(a[:, :12], b[:, :12], rtol=0, atol=0)
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def perturbed(model: BloomForCausalLM) -> BloomForCausalLM:
    """Non-trivial LayerNorms and biases, so a test sees every parameter."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model


def twins(impl: str, **overrides) -> tuple[BloomForCausalLM, BloomForCausalLM]:
    """(eager reference, same weights with attention_impl=impl)."""
    eager = perturbed(build(seed=1, attention_impl="eager", **overrides))
    other = build(seed=2, attention_impl=impl, **overrides)
    other.load_state_dict(eager.state_dict())
    return eager, other


@pytest.mark.parametrize("impl", ["sdpa", "auto", "flash"])
def test_attention_paths_match_eager_fp32_logits_and_grads(impl: str) -> None:
    """Every path that runs on this machine equals the eager reference (flash falls back to sdpa on CPU)."""
    eager, other = twins(impl)
    ids, labels = torch.randint(0, 97, (3, 24)), torch.randint(0, 97, (3, 24))
    eager(ids, labels=labels).backward()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # flash's fallback warning: tested below
        other(ids, labels=labels).backward()
        with torch.no_grad():
            torch.testing.assert_close(other(ids), eager(ids), rtol=0, atol=1e-5)
    for (name, pe), po in zip(eager.named_parameters(), other.parameters()):
        torch.testing.assert_close(po.grad, pe.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_bf16_stays_close_to_fp32(impl: str) -> None:
    """bf16 weights and activations; softmax and loss in FP32: logits within bf16 rounding of FP32."""
    model = perturbed(build(seed=3, attention_impl=impl))
    ids, labels = torch.randint(0, 97, (3, 24)), torch.randint(0, 97, (3, 24))
    with torch.no_grad():
        reference, ref_loss = model(ids), model(ids, labels=labels)
        low = model.to(torch.bfloat16)
        logits, loss = low(ids), low(ids, labels=labels)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert (logits.float() - reference).abs().max().item() < 0.01 * reference.abs().max().item()
    assert loss.item() == pytest.approx(ref_loss.item(), rel=5e-3)
    # The loss is FP32 cross-entropy of the bf16 logits, to FP32 rounding, not a bf16 one.
    exact = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten())
    assert loss.item() == pytest.approx(exact.item(), rel=1e-6)


def test_query_key_layer_scaling_in_bf16() -> None:
    """The 16-bit q.k^T is computed at 1/layer of its size and scaled back in FP32: same result."""
    model = perturbed(build(seed=4, attention_impl="eager", num_layers=6))
    ids = torch.randint(0, 97, (2, 20))
    with torch.no_grad():
        reference = model(ids)
        scaled = model.to(torch.bfloat16)(ids).float()
        for block in model.transformer.h:
            block.self_attention.query_key_layer_scaling = False
        unscaled = model(ids).float()
    bound = 0.01 * reference.abs().max().item()
    assert (scaled - reference).abs().max().item() < bound
    assert (unscaled - reference).abs().max().item() < bound
    assert not torch.equal(scaled, unscaled)  # the scaling did change the bf16 arithmetic


def test_query_key_layer_scaling_is_exact_in_fp32() -> None:
    scaled = perturbed(build(seed=3, query_key_layer_scaling=True, attention_impl="eager"))
    plain = build(seed=4, query_key_layer_scaling=False, attention_impl="eager")
    plain.load_state_dict(scaled.state_dict())
    ids = torch.randint(0, 97, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(scaled(ids), plain(ids), rtol=0, atol=1e-5)


def test_flash_falls_back_once_with_a_reason() -> None:
    assert "CUDA" in flash_unavailable_reason(torch.device("cpu"), torch.bfloat16)
    assert "bf16" in flash_unavailable_reason(torch.device("cuda"), torch.float32)
    assert resolve_impl("auto", torch.device("cpu"), torch.float32) == "sdpa"
    assert resolve_impl("eager", torch.device("cpu"), torch.float32) == "eager"
    attention_module._warned.clear()
    model = build(attention_impl="flash")
    ids = torch.randint(0, 97, (1, 8))
    with pytest.warns(RuntimeWarning, match="falls back to 'sdpa'.*CUDA"), torch.no_grad():
        model(ids)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second forward is silent
        with torch.no_grad():
            model(ids)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (and flash_attn for the flash path)")
def test_cuda_paths_match_eager_bf16() -> None:
    """On a GPU: sdpa and (if installed) flash-attention 2 against eager, in bf16."""
    ids = torch.randint(0, 97, (2, 64), device="cuda")
    eager, _ = twins("sdpa")
    eager = eager.cuda().to(torch.bfloat16)
    with torch.no_grad():
        reference = eager(ids).float()
        for impl in ("sdpa", "flash"):
            if impl == "flash" and flash_import_error() is not None:
                continue
            other = build(attention_impl=impl).cuda().to(torch.bfloat16)
            other.load_state_dict(eager.state_dict())
            assert (other(ids).float() - reference).abs().max().item() < 0.02 * reference.abs().max().item()


def test_runs_beyond_max_seq_len() -> None:
    model = build()
    with torch.no_grad():
        assert model(torch.randint(0, 97, (1, 3 * model.config.max_seq_len))).shape == (1, 96, 97)


def test_loss_matches_manual_cross_entropy_with_ignore_and_mask() -> None:
    model = build(seed=5)
    ids = torch.randint(0, 97, (4, 10))
    labels = torch.randint(0, 97, (4, 10))
    labels[0, :3] = -100
    labels[2, 7:] = -100
    loss_mask = torch.rand(4, 10) > 0.3
    with torch.no_grad():
        logits = model(ids).double()
        loss = model(ids, labels=labels, loss_mask=loss_mask)
        loss_no_mask = model(ids, labels=labels)
    keep = (labels != -100) & loss_mask
    manual = F.cross_entropy(logits[keep], labels[keep])
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)
    manual_no_mask = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    assert loss_no_mask.item() == pytest.approx(manual_no_mask.item(), rel=1e-5)
    # Float masks weight tokens; an all-masked batch gives 0, not NaN.
    assert model(ids, labels=labels, loss_mask=keep.float()).item() == pytest.approx(manual.item(), rel=1e-5)
    assert model(ids, labels=torch.full_like(labels, -100)).item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_cross_entropy_matches_torch_in_value_and_gradient(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    logits = (3 * torch.randn(12, 50)).to(dtype).requires_grad_()
    labels = torch.randint(0, 50, (12,))
    weight = torch.rand(12)
    weight[3] = 0.0
    loss = cross_entropy(logits, labels, weight)
    loss.backward()
    reference = logits.detach().double().requires_grad_()
    expected = (F.cross_entropy(reference, labels, reduction="none") * weight.double()).sum()
    expected.backward()
    assert loss.dtype == torch.float32 and logits.grad.dtype == dtype
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    tol = 1e-6 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(logits.grad.double(), reference.grad, rtol=0, atol=tol)
    assert torch.count_nonzero(logits.grad[3]) == 0


def test_fused_cross_entropy_is_exact_where_the_softmax_underflows() -> None:
    logits = torch.tensor([[0.0, 200.0, -300.0], [1.0, 2.0, 3.0]], requires_grad=True)
    labels = torch.tensor([2, 1])  # row 0: p(label) = e^-500, 0 in FP32
    loss = cross_entropy(logits, labels, torch.ones(2))
    expected = F.cross_entropy(logits.double(), labels, reduction="sum")
    assert torch.isfinite(loss) and loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_fused_cross_entropy_refuses_a_second_backward() -> None:
    logits = torch.randn(4, 9, requires_grad=True)
    loss = cross_entropy(logits, torch.randint(0, 9, (4,)), torch.ones(4))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_bad_inputs_raise_clear_errors() -> None:
    model = build()
    with pytest.raises(ValueError, match="vocab_size=97"):
        model(torch.tensor([[1, 2, 97]]))
    with pytest.raises(ValueError, match="input_ids"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        model(torch.zeros(2, 5, dtype=torch.long), labels=torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be in"):
        model(torch.zeros(1, 3, dtype=torch.long), labels=torch.tensor([[1, -100, 97]]))


# ---- training controls ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["torch", "deepspeed"])
def test_activation_checkpointing_gives_identical_gradients(impl: str) -> None:
    ids = torch.randint(0, 97, (2, 16))
    labels = torch.randint(0, 97, (2, 16))
    grads = []
    for recompute in (False, True):
        model = build(
            seed=6,
            hidden_dropout=0.1,
            attention_dropout=0.1,
            activation_checkpointing=recompute,
            activation_checkpointing_impl=impl,
        )
        model.train()
        torch.manual_seed(123)  # same dropout masks; checkpoint replays the RNG state
        model(ids, labels=labels).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=0, atol=0, msg=name)


def memory_model(checkpointing: bool, impl: str = "torch") -> BloomForCausalLM:
    """Activations dominate: 6 layers of [4, 256, 64], tiny vocabulary."""
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=256, hidden_size=64, num_layers=6, num_heads=4, max_seq_len=256)
    cfg.activation_checkpointing, cfg.activation_checkpointing_impl = checkpointing, impl
    return BloomForCausalLM(cfg).train()


def test_activation_checkpointing_saves_only_block_inputs() -> None:
    """Counted by a saved-tensors hook (torch's checkpoint; DeepSpeed's keeps its inputs out of autograd's sight)."""
    ids = torch.randint(0, 256, (4, 256))
    saved = {}
    for on in (False, True):
        model = memory_model(on)
        saved[on], loss = saved_activation_bytes(
            lambda m=model: m(ids, labels=ids), exclude=model.parameters()
        )
        loss.backward()  # the recompute really happens and needs nothing else
    block_input = 4 * 256 * 64 * 4  # one FP32 [batch, seq, hidden] per layer
    assert saved[True] < saved[False] / 5
    # Kept with checkpointing: each layer's input, the (shared) bias, and the LM head's tensors.
    assert 6 * block_input <= saved[True] <= 6 * block_input + 4 * 4 * 256 * 256 * 4


@pytest.mark.slow
@pytest.mark.skipif(not cpu_peak_supported(), reason="needs Linux /proc/self/clear_refs and glibc")
def test_activation_checkpointing_lowers_measured_peak_memory() -> None:
    ids = torch.randint(0, 256, (4, 256))
    peaks = {}
    for on, impl in ((False, "torch"), (True, "torch"), (True, "deepspeed")):
        model = memory_model(on, impl)
        peaks[on, impl], _ = peak_memory_bytes(lambda m=model: m(ids, labels=ids).backward())
    # Measured ~33 MB without, ~8 MB with, for this shape.
    full = peaks[False, "torch"]
    assert full > 15e6 and peaks[True, "torch"] < 0.5 * full and peaks[True, "deepspeed"] < 0.5 * full, peaks


@pytest.mark.slow
def test_compiled_blocks_match_eager_one_graph_for_all_layers() -> None:
    """torch.compile of every block (graph capture + AOT autograd, no codegen): same loss and grads,
    and one graph serves all layers (the layer number is an argument, not a constant)."""
    torch._dynamo.reset()
    counters.clear()
    eager, compiled = twins("sdpa", compile_blocks=True, compile_backend="aot_eager")
    eager.config.compile_blocks = False
    eager = BloomForCausalLM(eager.config)  # an uncompiled twin
    eager.load_state_dict(compiled.state_dict())
    assert set(compiled.state_dict()) == set(eager.state_dict())  # no _orig_mod. prefixes
    ids, labels = torch.randint(0, 97, (2, 16)), torch.randint(0, 97, (2, 16))
    compiled.train()(ids, labels=labels).backward()
    eager.train()(ids, labels=labels).backward()
    for (name, pe), pc in zip(eager.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(pc.grad, pe.grad, rtol=1e-5, atol=1e-6, msg=name)
    assert counters["stats"]["unique_graphs"] == 1


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="inductor needs a C++ compiler"
)
def test_inductor_compiled_blocks_match_eager() -> None:
    """The real thing: inductor-generated CPU kernels for the blocks, forward in eval (~10-30 s cold)."""
    torch._dynamo.reset()
    eager = perturbed(build(seed=8))
    compiled = build(seed=9, compile_blocks=True)
    compiled.load_state_dict(eager.state_dict())
    ids = torch.randint(0, 97, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(compiled(ids), eager(ids), rtol=1e-4, atol=1e-5)


def test_set_dropout_changes_rates_and_behaviour() -> None:
    model = build()
    ids = torch.randint(0, 97, (2, 12))
    model.train()
    with torch.no_grad():
        assert torch.equal(model(ids), model(ids))  # dropout 0: deterministic
        model.set_dropout(attention=0.1, hidden=0.2)
        assert not torch.equal(model(ids), model(ids))
    attn = [m.self_attention.attention_dropout.p for m in model.transformer.h]
    hidden = [m.hidden_dropout.p for m in model.transformer.h]
    assert attn == [0.1] * 3 and hidden == [0.2] * 3
    assert (model.config.attention_dropout, model.config.hidden_dropout) == (0.1, 0.2)
    model.set_dropout(hidden=0.0)
    assert [m.hidden_dropout.p for m in model.transformer.h] == [0.0] * 3
    assert model.transformer.h[0].self_attention.attention_dropout.p == 0.1
    with pytest.raises(ValueError, match="hidden dropout"):
        model.set_dropout(hidden=1.0)


def test_attention_and_hidden_dropout_act_separately() -> None:
    model = build().train()
    ids = torch.randint(0, 97, (2, 12))
    with torch.no_grad():
        for attention, hidden in ((0.5, 0.0), (0.0, 0.5)):
            model.set_dropout(attention=attention, hidden=hidden)
            assert not torch.equal(model(ids), model(ids)), (attention, hidden)
        model.set_dropout(attention=0.0, hidden=0.0)
        assert torch.equal(model(ids), model(ids))


def test_set_dropout_takes_effect_inside_a_deepspeed_engine() -> None:
    """The trainer changes dropout mid-run through engine.module (the paper: 0.1 from step 129,900)."""
    deepspeed = pytest.importorskip("deepspeed")
    from bloomberg_style.training.distributed import init_distributed

    init_distributed(torch.get_num_threads())
    model = build(seed=10)
    config = {
        "train_batch_size": 2,
        "train_micro_batch_size_per_gpu": 2,
        "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "torch_adam": True}},
        "zero_optimization": {"stage": 0},
    }
    engine, *_ = deepspeed.initialize(model=model, model_parameters=param_groups(model, 0.1), config=config)
    engine.train()
    ids, labels = torch.randint(0, 97, (2, 12)), torch.randint(0, 97, (2, 12))
    with torch.no_grad():
        assert torch.equal(engine(ids), engine(ids))
        engine.module.set_dropout(attention=0.3, hidden=0.3)
        assert not torch.equal(engine(ids), engine(ids))
    loss = engine(ids, labels=labels)  # a training step with the new rates
    engine.backward(loss)
    engine.step()
    assert engine.module.config.hidden_dropout == 0.3
    engine.module.set_dropout(attention=0.0, hidden=0.0)
    with torch.no_grad():
        assert torch.equal(engine(ids), engine(ids))


def test_weight_decay_groups() -> None:
    model = build()
    decay, no_decay = param_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decay_names = {names[id(p)] for p in decay["params"]}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert "transformer.word_embeddings.weight" in decay_names  # tied head: one entry
    assert all(n.endswith(".weight") and "layernorm" not in n and "ln_f" not in n for n in decay_names)
    assert all(n.endswith(".bias") or "layernorm" in n or "ln_f" in n for n in no_decay_names)
    assert len(decay_names) == 1 + 4 * 3 and len(no_decay_names) == 4 + 3 * 8
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    torch.optim.AdamW(param_groups(model, 0.1), lr=1e-3)  # accepted as-is


# ---- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(hidden_size=50, num_heads=6), "hidden_size"),
        (dict(num_layers=0), "num_layers"),
        (dict(vocab_size=-3), "vocab_size"),
        (dict(attention_impl="flash2"), "attention_impl"),
        (dict(activation_checkpointing_impl="megatron"), "activation_checkpointing_impl"),
        (dict(compile_blocks=1), "compile_blocks"),
        (dict(compile_backend=""), "compile_backend"),
        (dict(hidden_dropout=1.0), "hidden_dropout"),
        (dict(attention_dropout=-0.1), "attention_dropout"),
        (dict(init_std=0.0), "init_std"),
        (dict(layer_norm_eps=0), "layer_norm_eps"),
        (dict(activation_checkpointing="yes"), "activation_checkpointing"),
    ],
)
def test_config_errors_name_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        small_config(**overrides)


def test_config_dict_round_trip_and_presets() -> None:
    cfg = ModelConfig.preset("tiny", vocab_size=1234, attention_impl="sdpa")
    assert cfg.vocab_size == 1234 and cfg.attention_impl == "sdpa"
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="'hiden_size'"):
        ModelConfig.from_dict({**cfg.to_dict(), "hiden_size": 3})
    with pytest.raises(ValueError, match="bloomberggpt-50b"):
        ModelConfig.preset("gpt-5")
    with pytest.raises(ValueError, match="'layers'"):
        ModelConfig.preset("tiny", layers=3)
    assert ModelConfig.preset("tiny-6h").num_heads & (ModelConfig.preset("tiny-6h").num_heads - 1) != 0
    assert ModelConfig(hidden_size=7680, num_heads=40).initializer_std == pytest.approx(math.sqrt(1 / 23040))
    assert small_config(init_std=0.02).initializer_std == 0.02
