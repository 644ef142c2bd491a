"""One optimizer step over a rank's micro-batches, with gradient accumulation.

The step owns the accumulation boundary (a batch ramp changes the number of micro-steps
per step mid-run) and reports whether DeepSpeed applied the update: it skips it when
the gradient norm is not finite (a NaN or inf loss included).

Nothing here reads a device value per micro-batch: the losses are summed on the device
(float64, the same sum, in the same order, as adding their Python floats) and the step's
numbers (loss sum, micro-batch count, applied, grad norm) reach the host in one read, after
the one all-reduce that every rank needs anyway. On a GPU a host read waits for all queued
work; one per micro-batch would stall the launch queue before every forward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


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
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    for i, batch in enumerate(micro_batches):
        engine.set_gradient_accumulation_boundary(i == len(micro_batches) - 1)
        loss = engine(batch["tokens"], labels=batch["labels"], loss_mask=batch["loss_mask"])
        loss = loss_hook(loss)
        engine.backward(loss)
        loss_sum += loss.detach().float().double()  # stays on the device
    engine.step()
    applied = float(engine.was_step_applied())
    loss_total, count, applied_all, grad_norm = _read_step_numbers(
        loss_sum, len(micro_batches), applied, engine.get_global_grad_norm(), device
    )
    return StepOutcome(loss=loss_total / count, grad_norm=grad_norm, applied=applied_all == world_size)


def _read_step_numbers(
    loss_sum: torch.Tensor, count: int, applied: float, grad_norm, device: torch.device
) -> list[float]:
    """[loss sum, micro-batches, ranks that applied] summed over ranks, and the (already global)
    grad norm: one all-reduce, one host read."""
    summed = torch.stack(
        [loss_sum, torch.tensor(float(count), dtype=torch.float64, device=device),
         torch.tensor(applied, dtype=torch.float64, device=device)]
    )  # fmt: skip
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.all_reduce(summed)
    if grad_norm is None:
        norm = torch.tensor([math.nan], dtype=torch.float64, device=device)
    elif isinstance(grad_norm, torch.Tensor):
        norm = grad_norm.detach().to(device=device, dtype=torch.float64).reshape(1)
    else:
        norm = torch.tensor([float(grad_norm)], dtype=torch.float64, device=device)
    return torch.cat([summed, norm]).tolist()
