"""The DeepSpeed JSON a run gets, derived from the run config (one source of truth).

The LR is not DeepSpeed's business here: the trainer writes the schedule's value into
the optimizer's param groups every step, so no DeepSpeed scheduler can override it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bloomberg_style.config import ConfigError, RunConfig

# Keys the run config owns: a DeepSpeed JSON may repeat them only with the same value.
OWNED = ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
         "gradient_clipping", "optimizer", "bf16", "fp16", "scheduler")  # fmt: skip


def build_deepspeed_config(cfg: RunConfig, world_size: int, accelerator: str) -> dict[str, Any]:
    t, o = cfg.train, cfg.optim
    t.grad_accumulation(world_size)  # every batch of the ramp must split evenly
    first = t.global_batch_at(0)  # the engine starts at the ramp's first batch
    accum = t.grad_accumulation(world_size, first)
    zero: dict[str, Any] = {"stage": t.zero_stage}
    if t.zero_stage >= 2:
        zero.update(overlap_comm=accelerator == "cuda", contiguous_gradients=True, reduce_scatter=True)
    if t.zero_stage == 3:
        zero.update(stage3_gather_16bit_weights_on_model_save=False)
        zero.update(zero3_buffer_sizes(*model_dims(cfg)))
        if t.shard_group_size:
            if world_size % t.shard_group_size:
                raise ConfigError(
                    f"train.shard_group_size={t.shard_group_size} does not divide {world_size} ranks"
                )
            zero.update(hierarchical_sharding(t.shard_group_size))
    derived = {
        "train_batch_size": first,
        "train_micro_batch_size_per_gpu": t.micro_batch_size,
        "gradient_accumulation_steps": accum,
        "gradient_clipping": o.grad_clip,
        "zero_optimization": zero,
        # bf16 compute with FP32 master weights and optimizer states (ZeRO keeps them).
        "bf16": {"enabled": t.precision == "bf16"},
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": o.lr,
                "betas": list(o.betas),
                "eps": o.eps,
                "weight_decay": o.weight_decay,
                # No fused CUDA Adam without CUDA; on GPUs DeepSpeed picks its fused kernel.
                "torch_adam": accelerator != "cuda",
            },
        },
        "steps_per_print": 10**9,  # we log ourselves
        "wall_clock_breakdown": False,
        "seed": t.seed,
    }
    if t.deepspeed_json:
        derived = merge_deepspeed_json(derived, Path(t.deepspeed_json))
    return derived


def model_dims(cfg: RunConfig) -> tuple[int, int, int]:
    """(hidden, layers, vocab) of the run's model, from the preset and overrides."""
    from bloomberg_style.model.config import ModelConfig, padded_vocab

    overrides = cfg.model.overrides.given()  # vocab_size / max_seq_len are refused there (set by the run)
    try:
        m = ModelConfig.preset(cfg.model.preset, **overrides)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model: {exc}") from exc
    vocab = getattr(cfg.data, "tokenizer_vocab_size", 0) or m.vocab_size
    return m.hidden_size, m.num_layers, padded_vocab(vocab, max(1, cfg.model.pad_vocab_to))


def zero3_buffer_sizes(hidden: int, layers: int, vocab: int) -> dict[str, int]:
    """ZeRO-3 bucket and prefetch sizes (in elements) from the model's shape.

    DeepSpeed's defaults are sized for big GPUs whatever the model (a 5e8-element reduce
    bucket, 1e9 live parameters): far too much for small models on CPU ranks. Following
    Hugging Face's `auto` rule: a reduce bucket of hidden^2, a prefetch bucket of
    0.9 hidden^2, parameters under 10 hidden elements kept whole on every rank (LayerNorms,
    biases). Live and reuse limits allow two blocks, or the embedding when it is larger,
    so one gathered layer can be in use while the next is fetched; optimizer sub-groups of
    one block. At 50B (hidden 7,680)
    that is a 59M-element bucket and about 1.4B live elements; at ladder-350m on CPU,
    0.6M and 14M. A `train.deepspeed_json` `zero_optimization` block overrides any of them.
    """
    block = 12 * hidden * hidden + 13 * hidden
    live = max(vocab * hidden, 2 * block)
    return {
        "reduce_bucket_size": hidden * hidden,
        "stage3_prefetch_bucket_size": int(0.9 * hidden * hidden),
        "stage3_param_persistence_threshold": 10 * hidden,
        "stage3_max_live_parameters": live,
        "stage3_max_reuse_distance": live,
        # The optimizer steps one sub-group of partitions at a time, with an FP32 gradient
        # buffer and Adam's temporaries of the sub-group's size: one block's worth, not
        # DeepSpeed's 1e9 elements (the whole partition on small models).
        "sub_group_size": block,
    }


ZERO3_BUFFER_KEYS = tuple(zero3_buffer_sizes(1, 1, 1))


def describe_zero3_buffers(ds_config: dict[str, Any]) -> str:
    """One line for the run's start: the sizes the engine will use (derived or overridden)."""
    zero = ds_config.get("zero_optimization", {})
    parts = [f"{k.removeprefix('stage3_')}={zero[k]:,}" for k in ZERO3_BUFFER_KEYS if k in zero]
    line = "ZeRO-3 buffers (elements): " + ", ".join(parts)
    if "mics_shard_size" in zero:
        line += f"\nZeRO-3 shard groups: MiCS, mics_shard_size={zero['mics_shard_size']}"
    elif "zero_hpz_partition_size" in zero:
        import deepspeed

        line += (
            f"\nZeRO-3 shard groups: zero_hpz_partition_size={zero['zero_hpz_partition_size']} (ZeRO++ "
            f"hierarchical partition: DeepSpeed {deepspeed.__version__} has no MiCS; see docs/cluster.md)"
        )
    return line


def mics_available() -> bool:
    """MiCS was removed from DeepSpeed (deepspeedai/DeepSpeed#8489); older releases have it."""
    from deepspeed.runtime import config as ds_config

    return "mics_shard_size" not in getattr(ds_config, "_REMOVED_ZERO_CONFIG_KEYS", {})


def hierarchical_sharding(group: int) -> dict[str, Any]:
    if mics_available():
        return {"mics_shard_size": group, "mics_hierarchical_params_gather": True}
    return {"zero_hpz_partition_size": group}


def merge_deepspeed_json(derived: dict[str, Any], path: Path) -> dict[str, Any]:
    """Add a user's DeepSpeed settings (MiCS, buckets, offload...) to the derived config.

    Settings the run config owns must agree: two sources for the batch size or the
    optimizer would be the silent-override bug of Megatron-LM #963 waiting to happen.
    """
    if not path.is_file():
        raise ConfigError(f"train.deepspeed_json: file not found: {path}")
    try:
        extra = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"train.deepspeed_json: {path} is not valid JSON: {exc}") from exc
    merged = dict(derived)
    for key, value in extra.items():
        if key in OWNED and key in derived and derived[key] != value:
            raise ConfigError(
                f"{path}: {key}={value!r} contradicts the run config ({derived[key]!r}); set it in the run YAML"
            )
        if key in OWNED and key not in derived:
            raise ConfigError(f"{path}: {key} is set by the run config, not the DeepSpeed JSON")
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged
