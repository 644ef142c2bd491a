"""One optimizer step over a rank's micro-batches, with gradient accumulation.

The step owns the accumulation boundary (a batch ramp changes the number of micro-steps
per step mid-run) and reports whether DeepSpeed applied the update: it skips it when
the gradient norm is not finite (a NaN or inf loss included).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from bloomberg_style.training.distributed import all_reduce_sum


@dataclass
class StepOutcome:
    loss: float  # mean micro-batch loss over all ranks
    grad_norm: float
    applied: bool  # every rank applied the update


def optimizer_step(
    engine,
    micro_batches: Sequence[dict[str, torch.Tensor]],
    lr: float,
    world_size: int,
    device: torch.device,
    loss_hook: Callable[[torch.Tensor], torch.Tensor] = lambda loss: loss,
) -> StepOutcome:
    """Forward and backward every micro-batch (tokens, labels, loss_mask), then step."""
    for group in engine.optimizer.param_groups:
        group["lr"] = lr
    engine.train()
    losses = []
    for i, batch in enumerate(micro_batches):
        engine.set_gradient_accumulation_boundary(i == len(micro_batches) - 1)
        loss = engine(batch["tokens"], labels=batch["labels"], loss_mask=batch["loss_mask"])
        loss = loss_hook(loss)
        engine.backward(loss)
        losses.append(loss.detach().float().item())
    engine.step()
    applied = bool(engine.was_step_applied())
    total, count, applied_all = all_reduce_sum([sum(losses), len(losses), float(applied)], device)
    grad_norm = engine.get_global_grad_norm()
    return StepOutcome(
        loss=total / count,
        grad_norm=float(grad_norm) if grad_norm is not None else math.nan,
        applied=applied_all == world_size,
    )
