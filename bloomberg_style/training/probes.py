"""Numbers read back from the engine for the metrics log (what it holds, not what we meant)."""

from __future__ import annotations


def engine_settings(engine) -> dict[str, float]:
    """LR, dropout and weight decay as the engine holds them."""
    group = engine.optimizer.param_groups[0]
    out = {"engine/lr": group["lr"], "engine/weight_decay": group["weight_decay"]}
    transformer = _our_bloom(engine.module)
    if transformer is None:  # a HF base (SFT): its dropouts are transformers' own
        return out
    block = transformer.h[0]
    return {
        **out,
        "engine/attention_dropout": block.self_attention.attention_dropout.p,
        "engine/hidden_dropout": block.hidden_dropout.p,
    }


def _our_bloom(module):
    """Our BLOOM's `transformer` (through a peft wrapper too), or None for another model."""
    try:
        transformer = module.transformer
    except AttributeError:
        return None
    return transformer if hasattr(transformer, "word_embeddings_layernorm") else None


def layernorm_norms(engine, zero_stage: int) -> dict[str, float]:
    """The paper's stability signals: weight norms of the embedding LN and layer-1 input LN."""
    transformer = _our_bloom(engine.module)
    if transformer is None:
        return {}
    weights = {
        "ln_norm/embedding": transformer.word_embeddings_layernorm.weight,
        "ln_norm/layer1_input": transformer.h[0].input_layernorm.weight,
    }
    if zero_stage == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(weights.values())):
            return {k: w.detach().float().norm().item() for k, w in weights.items()}
    return {k: w.detach().float().norm().item() for k, w in weights.items()}
