"""Build the model the way the engine will hold it.

ZeRO stages 0-2 keep a full copy of the weights on every rank, so the model is built
plainly. ZeRO-3 exists for models that do not fit on one device: there the model is
constructed inside `deepspeed.zero.Init` with the engine's own config and dtype, so each
module's parameters are partitioned as soon as the module exists and no rank ever holds
more than its partition plus the parameter being initialised (the paper's init is applied
per partition, see model/init.py). Building the whole FP32 model first, as a plain build
would, needs 200 GB per rank at 50B parameters.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

# Lets DeepSpeed's ds_to_universal convert our checkpoints for a new rank count / ZeRO stage.
UNIVERSAL_CHECKPOINT_INFO = {"universal_checkpoint_version": 0.4}


def zero_stage(ds_config: dict[str, Any]) -> int:
    return int(ds_config.get("zero_optimization", {}).get("stage", 0))


def construction_context(ds_config: dict[str, Any]) -> contextlib.AbstractContextManager:
    """`deepspeed.zero.Init` for ZeRO-3 (partitioned from birth), else nothing."""
    if zero_stage(ds_config) != 3:
        return contextlib.nullcontext()
    import deepspeed

    from bloomberg_style.training.host_memory import fix_malloc_thresholds

    fix_malloc_thresholds()  # before the first partition exists (see host_memory.py)

    # The dtype comes from ds_config (bf16 / fp16 / else FP32), the engine's own rule. An explicit
    # dtype= is not passed: DeepSpeed 0.19's Init reads `dtype or fp16 if fp16_supported else
    # bf16 ...`, so on a CPU accelerator (no fp16) any dtype given, FP32 included, became bf16.
    return deepspeed.zero.Init(config_dict_or_path=ds_config)


def build_model(model_cfg, ds_config: dict[str, Any], model_cls=None) -> torch.nn.Module:
    """A BloomForCausalLM (or `model_cls`) built for an engine with `ds_config`.

    Call it after the seed is set: under ZeRO-3 every rank draws the same full-size
    initial values and keeps its slice, so the weights equal an unsharded build's.
    """
    if model_cls is None:
        from bloomberg_style.model import BloomForCausalLM as model_cls
    if zero_stage(ds_config) == 3 and _is_main():
        from bloomberg_style.training.deepspeed_config import describe_zero3_buffers

        print(describe_zero3_buffers(ds_config), flush=True)
    with construction_context(ds_config):
        model = model_cls(model_cfg)
    model.universal_checkpoint_info = dict(UNIVERSAL_CHECKPOINT_INFO)
    return model


def _is_main() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
