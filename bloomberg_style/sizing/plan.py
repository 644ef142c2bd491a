"""Steps, tokens and days for a run on G GPUs with a batch-size ramp.

BloombergGPT: 1,024 sequences x 2,048 tokens for 7,200 steps, then 2,048 x 2,048.
Time per step = tokens per step * hardware FLOPs per token / (G * rate). The paper counted
8N hardware FLOPs per token (6N of model work / recompute factor 0.75, attention FLOPs left
out): 2,048 x 2,048 x 8 x 50.56B / (512 x 102 TFLOP/s) = 32.5 s per step, as it reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .flops import flops_per_token
from .shape import Shape


@dataclass(frozen=True)
class BatchPhase:
    sequences: int  # global batch, in sequences
    steps: int | None  # None: the last phase, runs until the end


PAPER_RAMP = (BatchPhase(1024, 7200), BatchPhase(2048, None))


def parse_batch_ramp(text: str) -> tuple[BatchPhase, ...]:
    """'1024:7200,2048' -> 1,024 sequences for 7,200 steps, then 2,048 to the end."""
    phases = []
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        seqs, _, steps = part.partition(":")
        try:
            phase = BatchPhase(int(seqs), int(steps) if steps else None)
        except ValueError:
            raise ValueError(f"batch ramp {text!r}: {part!r} is not SEQUENCES:STEPS or SEQUENCES") from None
        if phase.sequences <= 0 or (phase.steps is not None and phase.steps <= 0):
            raise ValueError(f"batch ramp {text!r}: sequences and steps must be > 0 in {part!r}")
        if (phase.steps is None) != last:
            raise ValueError(f"batch ramp {text!r}: every phase but the last needs :STEPS; the last has none")
        phases.append(phase)
    if not phases:
        raise ValueError("batch ramp is empty; expected e.g. '1024:7200,2048'")
    return tuple(phases)


def steps_for_tokens(tokens: float, ramp: tuple[BatchPhase, ...], seq_len: int) -> int:
    """Fewest steps of the ramp that see at least `tokens` tokens."""
    steps, left = 0, tokens
    for phase in ramp:
        per_step = phase.sequences * seq_len
        need = math.ceil(left / per_step - 1e-9)
        if phase.steps is None or need <= phase.steps:
            return steps + max(need, 0)
        steps, left = steps + phase.steps, left - phase.steps * per_step
    raise AssertionError("unreachable: the last phase is open-ended")


@dataclass(frozen=True)
class PhasePlan:
    sequences: int
    steps: int
    tokens: float
    seconds_per_step: float


@dataclass(frozen=True)
class TrainingPlan:
    phases: list[PhasePlan]
    gpus: int
    hardware_tflops: float  # per GPU
    flops_per_token: float  # hardware FLOPs, recomputation counted
    params: int

    @property
    def steps(self) -> int:
        return sum(p.steps for p in self.phases)

    @property
    def tokens(self) -> float:
        return sum(p.tokens for p in self.phases)

    @property
    def hardware_flops(self) -> float:
        return self.tokens * self.flops_per_token

    @property
    def seconds(self) -> float:
        return sum(p.steps * p.seconds_per_step for p in self.phases)

    @property
    def days(self) -> float:
        return self.seconds / 86400.0

    @property
    def gpu_hours(self) -> float:
        return self.seconds * self.gpus / 3600.0


def hardware_flops_per_token(
    shape: Shape, *, recompute_factor: float = 0.75, include_attention: bool = False
) -> float:
    """Model FLOPs per token (6N, + attention if asked) / recompute factor: 8N at 0.75."""
    return (
        flops_per_token(
            shape.model_config(),
            shape.params,
            shape.seq_len,
            recompute=False,
            include_attention=include_attention,
        )
        / recompute_factor
    )


def plan_training(
    shape: Shape,
    steps: int,
    *,
    gpus: int,
    tflops: float,
    ramp: tuple[BatchPhase, ...] = PAPER_RAMP,
    recompute_factor: float = 0.75,
    include_attention: bool = False,
) -> TrainingPlan:
    """Split `steps` over the ramp and time each phase at `tflops` hardware TFLOP/s per GPU."""
    if steps <= 0 or gpus <= 0 or tflops <= 0:
        raise ValueError(f"steps, gpus and tflops must be > 0, got {steps}, {gpus}, {tflops}")
    per_token = hardware_flops_per_token(
        shape, recompute_factor=recompute_factor, include_attention=include_attention
    )
    phases, left = [], steps
    for phase in ramp:
        n = left if phase.steps is None else min(phase.steps, left)
        if n > 0:
            tokens = float(n * phase.sequences * shape.seq_len)
            seconds = phase.sequences * shape.seq_len * per_token / (gpus * tflops * 1e12)
            phases.append(PhasePlan(phase.sequences, n, tokens, seconds))
        left -= n
    return TrainingPlan(phases, gpus, tflops, per_token, shape.params)
