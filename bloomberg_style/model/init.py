"""The paper's initialisation (BloombergGPT section 2.3, after Megatron/BLOOM).

Every weight matrix, the embedding included, is N(0, std) with
std = sqrt(1 / (3 * hidden)); the two matrices that write into the residual
stream (attention output, second FFN matrix) use std / sqrt(2 * layers) so the
residual's variance does not grow with depth. Biases 0, LayerNorm 1 and 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn

# Modules whose output is added to the residual stream.
RESIDUAL_OUTPUT_NAMES = ("self_attention.dense", "mlp.dense_4h_to_h")


def init_weights(model: nn.Module) -> None:
    """Initialise a BloomForCausalLM in place (meta tensors are skipped)."""
    config = model.config
    std = config.initializer_std
    out_std = std / math.sqrt(2.0 * config.num_layers)
    seen: set[int] = set()  # the tied LM head shares the embedding: initialise it once

    def set_(param: torch.Tensor | None, fn: Callable[[torch.Tensor], object]) -> None:
        if param is None or id(param) in seen:
            return
        seen.add(id(param))
        _apply(param, fn)

    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            s = out_std if name.endswith(RESIDUAL_OUTPUT_NAMES) else std
            set_(module.weight, lambda w, s=s: nn.init.normal_(w, mean=0.0, std=s))
            set_(module.bias, nn.init.zeros_)
        elif isinstance(module, nn.Embedding):
            set_(module.weight, lambda w: nn.init.normal_(w, mean=0.0, std=std))
        elif isinstance(module, nn.LayerNorm):
            set_(module.weight, nn.init.ones_)
            set_(module.bias, nn.init.zeros_)


def _apply(param: torch.Tensor, fn: Callable[[torch.Tensor], object]) -> None:
    """Run an in-place init on a full parameter: nothing on meta, per partition under ZeRO-3."""
    if param.is_meta:
        return
    if hasattr(param, "ds_id"):  # partitioned by deepspeed.zero.Init
        _apply_partitioned(param, fn)
        return
    with torch.no_grad():
        fn(param)


@torch.no_grad()
def _apply_partitioned(param: torch.Tensor, fn: Callable[[torch.Tensor], object]) -> None:
    """Initialise a ZeRO-3 parameter without gathering it.

    Every rank draws the full tensor in FP32 from the same RNG stream an unsharded build
    uses (the seed is the same on all ranks), keeps only its own slice and frees the rest:
    the weights equal an unsharded build's bit for bit (after the cast to the engine's
    dtype), no collective runs, and a rank holds its partition plus this one parameter.
    A secondary (hpZ) partition is filled by DeepSpeed from the primary one when it gathers,
    so only hierarchical layouts need the gathered path.
    """
    import torch.distributed as dist

    if getattr(param, "ds_secondary_tensor", None) is not None:
        import deepspeed

        with deepspeed.zero.GatheredParameters([param], modifier_rank=0):
            full = torch.empty(param.ds_shape, dtype=torch.float32, device=param.device)
            fn(full)
            param.copy_(full)
        return
    shard = param.ds_tensor
    full = torch.empty(param.ds_shape, dtype=torch.float32, device=shard.device)
    fn(full)
    flat = full.view(-1)
    start = shard.ds_numel * dist.get_rank(group=param.ds_process_group)
    n = max(0, min(shard.ds_numel, flat.numel() - start))
    shard.view(-1)[:n].copy_(flat[start : start + n])
    shard.view(-1)[n:].zero_()  # alignment padding past the tensor's end
