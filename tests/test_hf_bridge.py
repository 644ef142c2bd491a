"""Our BLOOM and transformers' BloomForCausalLM compute the same function, both directions."""

from __future__ import annotations

import pytest
import torch

from bloomberg_style.export import (
    config_from_hf,
    from_hf_state_dict,
    load_hf_folder,
    save_hf_folder,
    to_hf_config,
    to_hf_state_dict,
)
from bloomberg_style.export.hf import _expected_shapes
from bloomberg_style.model import BloomForCausalLM, ModelConfig

transformers = pytest.importorskip("transformers")

SHAPES = [
    dict(vocab_size=101, hidden_size=64, num_layers=3, num_heads=4),
    dict(vocab_size=83, hidden_size=72, num_layers=2, num_heads=6),  # non-power-of-two heads
]


def ours(seed: int, **shape) -> BloomForCausalLM:
    """Our model with random weights, LayerNorms and biases perturbed away from 1 and 0."""
    torch.manual_seed(seed)
    model = BloomForCausalLM(ModelConfig(**shape)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.2 * torch.randn_like(p))
    return model


def hf_logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_expected_shapes_match_the_model() -> None:
    cfg = ModelConfig(**SHAPES[1])
    model = BloomForCausalLM(cfg)
    assert _expected_shapes(cfg) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_ours_to_hf_same_logits(shape: dict, impl: str) -> None:
    model = ours(0, **shape, attention_impl=impl)
    hf = transformers.BloomForCausalLM(to_hf_config(model.config)).eval()
    hf.load_state_dict(to_hf_state_dict(model), strict=True)
    ids = torch.randint(0, shape["vocab_size"], (3, 17))
    with torch.no_grad():
        torch.testing.assert_close(hf_logits(hf, ids), model(ids), rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_hf_to_ours_same_logits(shape: dict) -> None:
    torch.manual_seed(1)
    hf_cfg = to_hf_config(ModelConfig(**shape))
    hf = transformers.BloomForCausalLM(hf_cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            if p.dim() == 1:
                p.add_(0.2 * torch.randn_like(p))
    cfg = config_from_hf(hf.config)
    assert (cfg.vocab_size, cfg.hidden_size, cfg.num_layers, cfg.num_heads) == tuple(shape.values())
    model = BloomForCausalLM(cfg).eval()
    model.load_state_dict(from_hf_state_dict(hf.state_dict(), cfg), strict=True)
    assert model.lm_head.weight is model.transformer.word_embeddings.weight
    ids = torch.randint(0, shape["vocab_size"], (2, 21))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf_logits(hf, ids), rtol=0, atol=1e-5)


def test_hf_folder_round_trip(tmp_path) -> None:
    model = ours(2, **SHAPES[1])
    folder = save_hf_folder(model, tmp_path / "hf", eos_token_id=5)
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    assert (hf.config.eos_token_id, hf.config.bos_token_id) == (5, None)
    ids = torch.randint(0, SHAPES[1]["vocab_size"], (2, 11))
    with torch.no_grad():
        expected = model(ids)
        torch.testing.assert_close(hf_logits(hf, ids), expected, rtol=0, atol=1e-5)
        for loaded in (load_hf_folder(folder), BloomForCausalLM.from_pretrained(folder)):
            assert loaded.lm_head.weight is loaded.transformer.word_embeddings.weight
            torch.testing.assert_close(loaded.eval()(ids), expected, rtol=0, atol=0)
        low = load_hf_folder(save_hf_folder(model, tmp_path / "bf16", dtype=torch.bfloat16))
        assert low.transformer.word_embeddings.weight.dtype == torch.bfloat16


def test_key_variants_are_accepted() -> None:
    model = ours(3, **SHAPES[0])
    state = model.state_dict()
    # Saved from a bare BloomModel (bigscience checkpoints): no "transformer." prefix, no head.
    bare = {k.removeprefix("transformer."): v for k, v in state.items() if k != "lm_head.weight"}
    restored = from_hf_state_dict(bare, model.config)
    assert set(restored) == set(state)
    assert all(torch.equal(restored[k], state[k]) for k in state)
    # Wrapped by an engine or torch.compile.
    wrapped = {"module._orig_mod." + k: v for k, v in state.items() if k != "lm_head.weight"}
    out = to_hf_state_dict(wrapped)
    assert set(out) == set(state) and out["lm_head.weight"] is out["transformer.word_embeddings.weight"]


def test_bridge_errors_name_the_problem() -> None:
    model = ours(4, **SHAPES[0])
    cfg = model.config
    state = dict(model.state_dict())
    state["transformer.h.1.mlp.dense_h_to_4h.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"transformer\.h\.1\.mlp\.dense_h_to_4h\.weight"):
        from_hf_state_dict(state, cfg)
    state = dict(model.state_dict())
    del state["transformer.ln_f.bias"]
    with pytest.raises(ValueError, match="ln_f.bias"):
        from_hf_state_dict(state, cfg)
    state = dict(model.state_dict())
    state["lm_head.weight"] = torch.randn_like(state["lm_head.weight"])
    with pytest.raises(ValueError, match="untied"):
        from_hf_state_dict(state, cfg)
    with pytest.raises(ValueError, match="apply_residual_connection_post_layernorm"):
        config_from_hf({**to_hf_config(cfg).to_dict(), "apply_residual_connection_post_layernorm": True})
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_hf_folder("/nonexistent/folder")
