"""`train.compile`: every transformer block through torch.compile, before DeepSpeed wraps the model.

Regional compile (compile the repeated block, not the whole model): the blocks share one
code object, so dynamo traces one graph that every layer reuses, compile time does not grow
with depth, and what sits around the blocks (embedding, the chunked LM-head loss, DeepSpeed's
ZeRO hooks on the outer model, activation checkpointing's recompute) stays eager.
`Module.compile` works in place, so parameter names and checkpoints do not change.
"""

from __future__ import annotations

from torch import nn


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's stack of blocks: its longest ModuleList (`transformer.h` here, `model.layers` in
    most Hugging Face families, wherever PEFT put them)."""
    stacks = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if not stacks:
        raise ValueError(f"train.compile: {type(model).__name__} has no ModuleList of blocks to compile")
    return max(stacks, key=len)


def compile_blocks(model: nn.Module, backend: str = "inductor") -> int:
    """Compile each block in place; returns how many."""
    blocks = transformer_blocks(model)
    for block in blocks:
        block.compile(backend=backend)
    return len(blocks)
