"""Fire drills: faults injected on purpose to prove that recovery works.

`BLOOMBERG_STYLE_INJECT="nan@5,inf_grad@6,spike@9,kill@4,kill_in_save@8"` (1-based optimizer
steps): nan / spike multiply that step's loss by NaN / 30, inf_grad keeps the loss finite but
makes every gradient infinite (an overflow in backward) (once per process: after the rollback
the spike's data is skipped, and a resumed process starts with a fresh list), kill makes
every rank SIGKILL itself right after the step, kill_in_save while that step's checkpoint
is being written (shards on disk, folder not yet published), hang stops the rank inside the
step so the hang watchdog fires (training/watchdog.py). `kind@STEP:RANK` fires on one rank
only; under torchrun a drill fires in the first attempt only (watchdog.drills_for_this_process).
"""

from __future__ import annotations

import os
import signal

import torch

from bloomberg_style.training.watchdog import drills_for_this_process

FAULTS_ENV = "BLOOMBERG_STYLE_INJECT"
KINDS = ("nan", "inf_grad", "spike", "kill", "kill_in_save", "hang")


def parse_faults(spec: str) -> dict[int, str]:
    faults = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        kind, _, step = item.partition("@")
        if kind not in KINDS or not step.isdigit():
            raise ValueError(
                f"{FAULTS_ENV}: cannot read {item!r}; expected nan@, inf_grad@, spike@, kill@, kill_in_save@ or hang@STEP[:RANK]"
            )
        faults[int(step)] = kind
    return faults


class FaultDrills:
    """The drills this process was asked for; each hook is a no-op for the other steps."""

    def __init__(self, spec: str | None = None, rank: int = 0):
        spec = os.environ.get(FAULTS_ENV, "") if spec is None else spec
        self.planned = parse_faults(drills_for_this_process(spec, rank))

    def hang_steps(self) -> set[int]:
        """Steps at which this rank is to stop making progress (the watchdog's drill)."""
        return {step for step, kind in self.planned.items() if kind == "hang"}

    def corrupt_loss(self, step: int, loss: torch.Tensor) -> torch.Tensor:
        """The loss of step `step`, made NaN, 30x larger or inf in backward if a drill says so (once)."""
        kind = (
            self.planned.pop(step, None) if self.planned.get(step) in ("nan", "spike", "inf_grad") else None
        )
        if kind == "nan":
            return loss * float("nan")
        if kind == "inf_grad":
            return _InfGradient.apply(loss)
        if kind == "spike":
            return loss * 30.0
        return loss

    def after_step(self, step: int) -> None:
        """Every rank SIGKILLs itself right after optimizer step `step` (the job dying)."""
        if self.planned.get(step) == "kill":
            os.kill(os.getpid(), signal.SIGKILL)

    def in_save(self, step: int) -> None:
        """Every rank SIGKILLs itself while checkpoint `step` is being written."""
        if self.planned.get(step) == "kill_in_save":
            os.kill(os.getpid(), signal.SIGKILL)


class _InfGradient(torch.autograd.Function):
    """Fire drill: the identity forward, an infinite gradient backward (overflow, finite loss)."""

    @staticmethod
    def forward(ctx, loss: torch.Tensor) -> torch.Tensor:
        return loss.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad * float("inf")
