"""ZeRO-3 inference for evaluation: a checkpoint too large for one device, 1/N of it per rank.

    deepspeed --num_gpus 8 launch/evaluate.py --checkpoint RUN --shard-weights --tasks fpb.jsonl --dtype bf16

The model is built inside deepspeed.zero.Init (training/engine_build.py) and filled one
tensor at a time from rank 0 (training/init_from.py), as SFT and continued pretraining
build a ZeRO-3 base, so no rank ever holds the whole model. deepspeed.initialize without an
optimizer then installs ZeRO-3's hooks (DeepSpeedZeRoOffload): each module's weights are
gathered just before its forward and freed after it. Parameters of at most
stage3_param_persistence_threshold elements (10 x hidden: LayerNorms, biases) are gathered
once and then kept whole on every rank, as in training.

Every forward is a collective, so every rank runs the same forwards: all ranks score every
example (no data-parallel split) and rank 0 reports. Greedy decoding follows rank 0's
tokens (`ShardedModel.agree`, a broadcast of one id per row each step), so a row stops, and
a batch ends, at the same step on every rank even if the ranks' logits ever differed in the
last bit (same inputs and same gathered weights make them equal on identical devices; the
broadcast makes it a guarantee, not an assumption about kernels).

DeepSpeed resets its parameter trace (what it prefetches next) at the start of a forward
of the module it wraps, and the scorers call `hidden_states` and then `lm_head` in chunks.
`ShardedModel` is that wrapped module: it runs each scoring batch as one forward of itself
(`selected_nll`), and generation's plain `model(batch)` is one too.

Only our BLOOM (a run, a checkpoint, one of our HF folders) is built this way; a foreign
Hugging Face base or an adapter folder is refused by `problem_with` before anything loads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# The ZeRO-3 sizes a forward uses (training/deepspeed_config.py derives them from the shape).
FORWARD_KEYS = ("stage3_prefetch_bucket_size", "stage3_param_persistence_threshold",
                "stage3_max_live_parameters", "stage3_max_reuse_distance")  # fmt: skip


def problem_with(checkpoint: str | Path) -> str | None:
    """Why --shard-weights cannot build this checkpoint (None: it can), read without loading it."""
    from bloomberg_style.artifacts import resolve
    from bloomberg_style.artifacts.hf_base import is_our_bloom

    ref = resolve(checkpoint)  # FileNotFoundError names a folder that holds no model
    if ref.kind == "adapter":
        return (
            f"--shard-weights: {checkpoint} is an adapter folder; merge it into its base first "
            "(bloomberg-style export-hf) and evaluate the merged folder"
        )
    if ref.kind == "hf" and not is_our_bloom(ref.weights):
        return (
            f"--shard-weights: {checkpoint} is a Hugging Face model that is not our BLOOM; ZeRO-3 "
            "evaluation builds our BLOOM only (drop --shard-weights to evaluate it on one device)"
        )
    return None


def inference_config(model_cfg: Any, dtype: str, world: int) -> dict[str, Any]:
    """The DeepSpeed config of a ZeRO-3 engine that only runs forwards (no optimizer).

    The batch keys are what DeepSpeed requires of any config (one micro-batch per rank, no
    accumulation); scoring batches are ours. The dtype (bf16, else FP32) is what zero.Init
    builds the partitions in.
    """
    from bloomberg_style.training.deepspeed_config import zero3_buffer_sizes

    sizes = zero3_buffer_sizes(model_cfg.hidden_size, model_cfg.num_layers, model_cfg.vocab_size)
    return {
        "train_micro_batch_size_per_gpu": 1,
        "train_batch_size": world,
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": 3, **{k: sizes[k] for k in FORWARD_KEYS}},
        "bf16": {"enabled": dtype == "bf16"},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


class ShardedModel(torch.nn.Module):
    """Our BLOOM under a ZeRO-3 engine, as the scorers call it: each call one forward of this module."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def config(self):
        return self.model.config

    def num_parameters(self) -> int:
        return self.model.num_parameters()  # ds_numel: the full sizes

    def forward(self, *args: Any, run: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        """model(*args, **kwargs), or run(model, *args, **kwargs): either way one root forward."""
        return self.model(*args, **kwargs) if run is None else run(self.model, *args, **kwargs)

    def selected_nll(self, batch: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
        """scoring.selected_nll of one batch (hidden states, then the LM head in chunks) as one forward."""
        from bloomberg_style.evaluation.scoring import selected_nll

        return self(batch, select, run=selected_nll)

    def agree(self, tokens: torch.Tensor) -> torch.Tensor:
        """Rank 0's tokens on every rank (greedy decoding stays in step)."""
        import torch.distributed as dist

        if dist.is_initialized() and dist.get_world_size() > 1:
            dist.broadcast(tokens, src=0)
        return tokens


def load_sharded(ref: Any, dtype: str) -> tuple[ShardedModel, Any, dict[str, Any]]:
    """(model, engine, config) for `ref`: built partitioned over the process group, in eval mode.

    Call on every rank after the process group started (training.distributed.init_distributed).
    The engine is returned so the caller keeps it alive while scoring.
    """
    import deepspeed
    import torch.distributed as dist

    from bloomberg_style.model import ModelConfig
    from bloomberg_style.training.init_from import base_model_config, build_partitioned

    cfg = ModelConfig.from_dict(base_model_config(ref))
    ds_config = inference_config(cfg, dtype, dist.get_world_size())
    model = build_partitioned(ref, ds_config, cfg)
    engine, *_ = deepspeed.initialize(model=ShardedModel(model), config=ds_config)
    return engine.module.eval(), engine, ds_config


def partition_report(model: torch.nn.Module, ds_config: dict[str, Any]) -> dict[str, Any]:
    """How the weights are spread: call on every rank (one all_gather); every rank gets all ranks' numbers."""
    import torch.distributed as dist

    params = list(model.parameters())  # unique: the tied head once
    parts = [p for p in params if hasattr(p, "ds_id")]
    local = sum(p.ds_tensor.numel() for p in parts)  # this rank's partitions (alignment padding included)
    per_rank = [local]
    if dist.is_initialized() and dist.get_world_size() > 1:
        per_rank = [0] * dist.get_world_size()
        dist.all_gather_object(per_rank, local)
    persistent = [p for p in parts if getattr(p, "ds_persist", False)]
    return {
        "ranks": len(per_rank),
        "parameters": len(params),
        "partitioned": len(parts),
        "elements": sum(getattr(p, "ds_numel", p.numel()) for p in params),
        "per_rank": per_rank,
        "persistent": len(persistent),
        "persistent_elements": sum(p.ds_numel for p in persistent),
        "persistence_threshold": ds_config["zero_optimization"]["stage3_param_persistence_threshold"],
    }


def describe_partition(r: dict[str, Any]) -> str:
    """The log line of a partition_report."""
    shares = ", ".join(f"{n:,}" for n in r["per_rank"])
    return (
        f"ZeRO-3: {r['partitioned']} of {r['parameters']} parameters partitioned over {r['ranks']} ranks; "
        f"partition per rank {shares} of {r['elements']:,} elements "
        f"({max(r['per_rank']) / max(1, r['elements']):.1%}); {r['persistent']} of at most "
        f"{r['persistence_threshold']:,} elements ({r['persistent_elements']:,} in all) are kept whole "
        "on every rank once gathered"
    )
