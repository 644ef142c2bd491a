"""Numbers read back from the engine for the metrics log (what it holds, not what we meant)."""

from __future__ import annotations


def engine_settings(engine) -> dict[str, float]:
    """LR, dropout and weight decay as the engine holds them."""
    group = engine.optimizer.param_groups[0]
    block = engine.module.transformer.h[0]
    return {
        "engine/lr": group["lr"],
        "engine/weight_decay": group["weight_decay"],
        "engine/attention_dropout": block.self_attention.attention_dropout.p,
        "engine/hidden_dropout": block.hidden_dropout.p,
    }


def layernorm_norms(engine, zero_stage: int) -> dict[str, float]:
    """The paper's stability signals: weight norms of the embedding LN and layer-1 input LN."""
    module = engine.module
    weights = {
        "ln_norm/embedding": module.transformer.word_embeddings_layernorm.weight,
        "ln_norm/layer1_input": module.transformer.h[0].input_layernorm.weight,
    }
    if zero_stage == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(weights.values())):
            return {k: w.detach().float().norm().item() for k, w in weights.items()}
    return {k: w.detach().float().norm().item() for k, w in weights.items()}
