"""Continued pretraining: start a run from an existing BLOOM's weights (`model.init_from`).

PMC-LLaMA continued LLaMA on biomedical papers, and most teams with a domain corpus start
from an open model rather than from scratch. `model.init_from` names a Hugging Face BLOOM
folder (bigscience/bloom-*, an export_hf output) or one of our run / checkpoints / step_*
folders (artifacts.resolve tells which). It sets the network's shape and its starting
weights; the optimizer, schedule and data position start fresh. A run that already has
checkpoints resumes from its own and never reads init_from again.

The vocabulary is the checkpoint's embedding rows (BLOOM pads 250,680 tokens to 250,880):
the run's tokenizer may be smaller than that, never larger.

Loading: ZeRO 0-2 copy the state dict into the built model before DeepSpeed wraps it. A
model built already partitioned (ZeRO-3: deepspeed.zero.Init, parameters carry `ds_id`) is
filled one parameter at a time through deepspeed.zero.GatheredParameters(modifier_rank=0):
only rank 0 reads, one tensor at a time (safetensors read per tensor, a ZeRO-3 checkpoint
assembled per parameter), and each parameter is whole only while it is copied. SFT builds
our BLOOM bases the same way under ZeRO-3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bloomberg_style.config import ConfigError

# The network's shape comes from init_from; a run may still change how it runs (dropout, kernels).
SHAPE_KEYS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "layer_norm_eps")


def resolve_init_from(path: str):
    """The ModelRef init_from names; ConfigError naming the field if it holds no usable model."""
    from bloomberg_style.artifacts import resolve

    try:
        ref = resolve(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"model.init_from: {exc}") from None
    if ref.kind == "adapter":
        raise ConfigError(
            f"model.init_from: {path} is an adapter folder; merge it first (bloomberg-style export-hf)"
        )
    return ref


def base_model_config(ref) -> dict[str, Any]:
    """The starting model's config (our ModelConfig keys), read without loading weights."""
    import json

    from bloomberg_style.artifacts.hf import config_from_hf
    from bloomberg_style.artifacts.layout import read_trainer_state

    try:
        if ref.kind == "hf":
            raw = json.loads((ref.weights / "config.json").read_text(encoding="utf-8"))
            return config_from_hf(raw).to_dict()
        state = read_trainer_state(ref.weights)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"model.init_from: {ref.path}: {exc}") from None
    if "model_config" not in state:
        raise ConfigError(
            f"model.init_from: {ref.weights} has no model_config: not a bloomberg-style checkpoint"
        )
    return dict(state["model_config"])


def init_model_config(ref, overrides: dict[str, Any], tokenizer_vocab: int, **run_fields: Any):
    """ModelConfig of a continued run: init_from's shape, the run's overrides and run fields.

    Refuses shape overrides and a tokenizer with more ids than the checkpoint has rows.
    """
    from bloomberg_style.model import ModelConfig

    base = base_model_config(ref)
    changed = sorted(k for k in overrides if k in SHAPE_KEYS and overrides[k] != base.get(k))
    if changed:
        raise ConfigError(
            f"model.overrides {changed}: the shape comes from model.init_from ({ref.path}); drop these keys"
        )
    rows = int(base["vocab_size"])
    if tokenizer_vocab > rows:
        raise ConfigError(
            f"data.tokenizer has {tokenizer_vocab} tokens but model.init_from ({ref.path}) has an embedding "
            f"of {rows} rows: not the tokenizer this model was trained with"
        )
    known = set(ModelConfig.__dataclass_fields__)
    fields = {k: v for k, v in base.items() if k in known}
    try:
        return ModelConfig.from_dict({**fields, **overrides, **run_fields, "vocab_size": rows})
    except ValueError as exc:
        raise ConfigError(f"model: {exc}") from exc


def read_initial_state(ref) -> dict[str, torch.Tensor]:
    """init_from's weights as our state dict (tied head included), in the dtype they were stored in."""
    from bloomberg_style.artifacts.checkpoint import load_checkpoint_model
    from bloomberg_style.artifacts.hf import load_hf_folder

    model = load_hf_folder(ref.weights) if ref.kind == "hf" else load_checkpoint_model(ref.weights)
    return model.state_dict()


def open_initial_weights(ref) -> dict[str, Any]:
    """init_from's tensors by our name, read lazily (`.contiguous()` reads one): safetensors
    tensor by tensor, a ZeRO-3 checkpoint assembled per parameter from its ranks' files."""
    from bloomberg_style.artifacts.checkpoint import open_checkpoint_weights
    from bloomberg_style.artifacts.hf import open_hf_weights, strip_wrappers

    if ref.kind == "hf":
        return open_hf_weights(ref.weights)
    weights, _ = open_checkpoint_weights(ref.weights)
    return {strip_wrappers(k): v for k, v in weights.items()}


def load_initial_weights(model: torch.nn.Module, ref, rank: int) -> int:
    """Copy init_from's weights into the built model; returns the number of tensors copied."""
    params = dict(model.named_parameters())
    partitioned = any(hasattr(p, "ds_id") for p in params.values())
    if not partitioned:
        state = read_initial_state(ref)
        result = model.load_state_dict(state, strict=True)
        del result
        return len(state)
    import deepspeed

    from bloomberg_style.training.distributed import broadcast_object

    weights = open_initial_weights(ref) if rank == 0 else {}
    problem = None
    if rank == 0:  # checked before the collectives: a rank-0 error mid-loop would hang the others
        shapes = {n: tuple(p.ds_shape) for n, p in params.items()}
        missing = sorted(n for n in shapes if n not in weights)
        wrong = [f"{n}: {tuple(weights[n].shape)} in init_from, {s} built" for n, s in shapes.items()
                 if n in weights and tuple(weights[n].shape) != s]  # fmt: skip
        if missing or wrong:
            problem = f"{ref.path}: missing tensors {missing[:5]}; wrong shapes {wrong[:3]}"
    problem = broadcast_object(problem)
    if problem:
        raise ValueError(problem)
    for name, param in params.items():  # whole only while copied, then re-partitioned
        with deepspeed.zero.GatheredParameters([param], modifier_rank=0):
            if rank == 0:
                param.data.copy_(weights[name].contiguous())
    return len(params)


def build_partitioned(ref, ds_config: dict[str, Any], model_cfg=None) -> torch.nn.Module:
    """Our BLOOM at `ref` built for a ZeRO-3 engine with `ds_config` (inside deepspeed.zero.Init)
    and filled one tensor at a time from rank 0: no rank holds the whole model. Used by SFT and
    by ZeRO-3 evaluation; model_cfg defaults to the one stored with `ref`. In eval mode."""
    import torch.distributed as dist

    from bloomberg_style.model import ModelConfig
    from bloomberg_style.training.engine_build import build_model

    model = build_model(model_cfg or ModelConfig.from_dict(base_model_config(ref)), ds_config)
    load_initial_weights(model, ref, dist.get_rank() if dist.is_initialized() else 0)
    return model.eval()


def describe(ref) -> str:
    where = Path(ref.weights)
    kind = "Hugging Face BLOOM folder" if ref.kind == "hf" else f"checkpoint {where.name}"
    return f"starting weights from model.init_from: {kind} {ref.path} (optimizer and schedule start fresh)"
