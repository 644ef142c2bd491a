"""Plateau detection on a validation metric.

An evaluation "improves" when the (optionally smoothed) metric falls more than
`threshold` below the best seen so far. A plateau is `patience` steps (or tokens) since
the last improvement. Smoothing is an exponential moving average with weight `alpha` on
the newest value (BloombergGPT smoothed its curves with alpha = 0.001).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class PlateauDetector:
    patience: float
    threshold: float = 0.0
    alpha: float = 0.0  # 0 = no smoothing
    best: float = float("inf")
    smoothed: float | None = None
    since: float = 0.0  # clock value (step or tokens) of the last improvement / reset
    since_step: int = 0  # the step where the current patience window began (the plateau's start)

    def update(self, value: float, clock: float, step: int = 0) -> bool:
        """Feed one evaluation at `clock`; True if the metric has plateaued."""
        if self.alpha and self.smoothed is not None:
            self.smoothed = self.alpha * value + (1 - self.alpha) * self.smoothed
        else:
            self.smoothed = value
        if self.smoothed < self.best - self.threshold:
            self.best = self.smoothed
            self.since, self.since_step = clock, step
            return False
        return clock - self.since >= self.patience

    def reset(self, clock: float, step: int = 0) -> None:
        """Start a new patience window (after an intervention)."""
        self.since, self.since_step = clock, step

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
