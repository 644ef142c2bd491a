"""SFT learning-rate schedules: linear warm-up, then cosine (ChatDoctor / Alpaca), linear
(HuaTuo / Med-ChatGLM) or constant, down to `min_lr` at the last step.

Same interface as the pretraining schedule (lr_at / state_dict / load_state_dict), so
the pretraining trainer drives it and saves it in checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class SFTSchedule:
    kind: str  # cosine | linear | constant
    peak_lr: float
    min_lr: float
    warmup_steps: int
    total_steps: int

    @classmethod
    def from_ratio(cls, kind: str, peak_lr: float, min_lr: float, warmup_ratio: float, total_steps: int):
        """Warm-up of ceil(ratio x steps) steps, as Hugging Face's Trainer counts it."""
        return cls(kind, peak_lr, min_lr, math.ceil(warmup_ratio * total_steps), total_steps)

    def lr_at(self, step: int) -> float:
        """LR of optimizer step `step` (0-based)."""
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        decay = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay)
        if self.kind == "constant":
            return self.peak_lr
        if self.kind == "linear":
            return self.peak_lr + (self.min_lr - self.peak_lr) * progress
        if self.kind == "cosine":
            return self.min_lr + (self.peak_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        raise ValueError(f"unknown schedule {self.kind!r}; expected cosine, linear or constant")

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
