"""Learning-rate schedule: linear warm-up, then cosine decay to a floor (BloombergGPT §3).

The schedule is a pure function of the optimizer step plus a small state (peak and floor)
that controllers may change during a run (an LR drop multiplies both). The state is saved
in checkpoints, and the trainer writes the rate into the optimizer's param groups every
step, so a resumed or overridden run can never silently keep a stale LR.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bloomberg_style.config import RunConfig


@dataclass
class WarmupCosineSchedule:
    peak_lr: float
    min_lr: float
    warmup_steps: int
    decay_steps: int  # length of the cosine part, counted from the end of warm-up

    @classmethod
    def from_run(cls, cfg: RunConfig) -> WarmupCosineSchedule:
        """The run's schedule: `optim.*`; decay_steps 0 = decay over the steps after warm-up."""
        o = cfg.optim
        decay = o.decay_steps or max(1, cfg.train.steps - o.warmup_steps)
        return cls(peak_lr=o.lr, min_lr=o.min_lr, warmup_steps=o.warmup_steps, decay_steps=decay)

    def lr_at(self, step: int) -> float:
        """LR for optimizer step `step` (0-based): step 0 already gets peak/warmup."""
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        if self.decay_steps <= 0:
            return self.peak_lr
        progress = min(1.0, (step - self.warmup_steps) / self.decay_steps)
        return self.min_lr + (self.peak_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def scale(self, factor: float) -> None:
        """Multiply peak and floor (the paper's LR drops: x2/3, x1/2, x1/2)."""
        if not factor > 0:
            raise ValueError(f"LR scale factor must be > 0, got {factor}")
        self.peak_lr *= factor
        self.min_lr *= factor

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
