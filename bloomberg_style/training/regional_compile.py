"""`train.compile`: every transformer block through torch.compile, before DeepSpeed wraps the model.

Regional compile (compile the repeated block, not the whole model): the blocks share one
code object, so dynamo traces one graph that every layer reuses, compile time does not grow
with depth, and what sits around the blocks (embedding, the chunked LM-head loss, DeepSpeed's
ZeRO hooks on the outer model, activation checkpointing's recompute) stays eager.
`Module.compile` works in place, so parameter names and checkpoints do not change.

ZeRO-3 puts a parameter-gathering hook on every submodule; traced inside a compiled block
they break the graph at every Linear and LayerNorm and recompile per module type until
dynamo gives up. Under ZeRO-3 each block is therefore a ZeRO-3 *leaf* (its parameters are
gathered together, once, by a hook on the block itself, and none sit inside it) and only the
block's `forward` is compiled, so the hooks run eagerly around hook-free compiled code. A
block's parameters are the unit ZeRO-3 gathers at that point anyway (one block of 70 in the
50B model: 1/70 of the parameters live at a time, as FSDP's per-block wrapping does).
"""

from __future__ import annotations

import torch
from torch import nn

from bloomberg_style.config import zero3_compile_problem


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's stack of blocks: its longest ModuleList (`transformer.h` here, `model.layers` in
    most Hugging Face families, wherever PEFT put them)."""
    stacks = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if not stacks:
        raise ValueError(f"train.compile: {type(model).__name__} has no ModuleList of blocks to compile")
    return max(stacks, key=len)


def compile_blocks(model: nn.Module, zero_stage: int = 0, backend: str = "inductor") -> int:
    """Compile each block in place, before DeepSpeed wraps `model`; returns how many."""
    blocks = transformer_blocks(model)
    if zero_stage == 3:
        if problem := zero3_compile_problem():
            raise ValueError(problem)
        from deepspeed.utils import set_z3_leaf_modules

        set_z3_leaf_modules(model, sorted({type(b) for b in blocks}, key=lambda t: t.__name__))
        for block in blocks:
            block.forward = torch.compile(block.forward, backend=backend)  # hooks stay outside
    else:
        for block in blocks:
            block.compile(backend=backend)
    return len(blocks)
