"""Our training checkpoints -> a plain model, for export, evaluation, SFT and chat.

A checkpoint folder is self-describing: `trainer_state.json` holds the model config,
and DeepSpeed's files hold the weights (for ZeRO 1-3 the FP32 master copy is gathered
from every rank's optimizer shard, so a bf16 run exports its full-precision weights).

Trust: DeepSpeed's `*_model_states.pt` / `*_optim_states.pt` are pickle files. Reading
weights from them here uses `weights_only=True` with an allowlist of DeepSpeed's three
small checkpoint classes (artifacts/safe_load.py), so a planted file cannot run code; only
resuming training unpickles them in full (DeepSpeed's loader). Everything we hand to
others (export_hf) is safetensors, and Hugging Face folders are read without unpickling
(safetensors, or `torch.load(weights_only=True)` for .bin files).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import torch

from .layout import STATE_FILE, read_trainer_state, resolve_checkpoint
from .safe_load import load_weights_only, weights_only_loads


def is_zero_checkpoint(step_dir: Path) -> bool:
    """Written by ZeRO 1-3 (per-rank optimizer shards), not stage 0 (the module saved whole)."""
    return any(step_dir.glob("*optim_states.pt")) and any(step_dir.glob("zero_pp_rank_*"))


def open_checkpoint_weights(path: str | Path, quiet: bool = False) -> tuple[dict[str, Any], bool]:
    """(name -> tensor or lazy tensor, lazy) for one of our checkpoints; nothing unpickled.

    ZeRO-3: DeepSpeed's reader memory-maps every rank's optimizer file and returns lazy
    tensors whose `.contiguous()` assembles the FP32 parameter from its ranks' slices
    (lazy=True: drop the mapping to release what was read). ZeRO 1-2: the FP32 master
    weights merged in memory. Stage 0: the saved module, memory-mapped.
    """
    step_dir = resolve_checkpoint(path)
    if not is_zero_checkpoint(step_dir):
        saved = load_weights_only(step_dir / "mp_rank_00_model_states.pt", mmap=True)
        return dict(saved["module"]), False
    from deepspeed.utils.zero_to_fp32 import GatheredTensor, get_fp32_state_dict_from_zero_checkpoint

    quiet_output = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
    with weights_only_loads(), quiet_output:  # DeepSpeed's reader asks for weights_only=False
        weights = get_fp32_state_dict_from_zero_checkpoint(
            str(step_dir.parent), tag=step_dir.name, lazy_mode=True
        )
    return dict(weights), any(isinstance(v, GatheredTensor) for v in weights.values())


def load_checkpoint_state_dict(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(model config dict, FP32 state dict) of a checkpoint written by our trainer (pickles: see above)."""
    step_dir = resolve_checkpoint(path)
    config = checkpoint_model_config(step_dir)  # before the long part
    weights, _ = open_checkpoint_weights(step_dir)
    done: dict[int, torch.Tensor] = {}  # a tied tensor is assembled once
    state: dict[str, torch.Tensor] = {}
    for name, value in weights.items():
        if id(value) not in done:
            done[id(value)] = value.contiguous().float()
        state[name] = done[id(value)]
    return config, state


def checkpoint_model_config(step_dir: Path) -> dict:
    state = read_trainer_state(step_dir)
    if "model_config" not in state:
        raise ValueError(f"{step_dir / STATE_FILE} has no model_config: not a bloomberg-style checkpoint")
    return state["model_config"]


def load_checkpoint_model(path: str | Path, dtype: torch.dtype | None = None):
    """A `BloomForCausalLM` with the weights of one of our checkpoints, in eval mode (FP32 by default)."""
    from bloomberg_style.model import BloomForCausalLM, ModelConfig

    from .hf import from_hf_state_dict

    config, weights = load_checkpoint_state_dict(path)
    cfg = ModelConfig.from_dict(config)
    state = from_hf_state_dict(weights, cfg)  # adds the tied head, checks every key and shape
    with torch.device("meta"):  # no throwaway random init of a big model
        model = BloomForCausalLM(cfg)
    model.load_state_dict(state, strict=True, assign=True)
    model.lm_head.weight = model.transformer.word_embeddings.weight  # assign=True replaced the tie
    return (model.to(dtype) if dtype is not None else model).eval()
