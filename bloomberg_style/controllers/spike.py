"""Loss-spike and non-finite-step monitor.

A spike is a training loss above mean + sigma * std of the recent window (and above
min_ratio * mean, so a very flat window does not turn noise into a spike). A run of
`max_skips` non-finite steps in a row counts as a spike too. The window is state that
goes into checkpoints, so a resumed run judges the same losses the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class SpikeMonitor:
    window: int
    sigma: float
    min_ratio: float
    max_skips: int
    history: list[float] = field(default_factory=list)
    consecutive_skips: int = 0

    def check(self, loss: float, step_applied: bool) -> str | None:
        """Feed one step; returns a reason string when the run should roll back."""
        if not step_applied or not math.isfinite(loss):
            self.consecutive_skips += 1
            if self.consecutive_skips >= self.max_skips:
                return f"{self.consecutive_skips} non-finite steps in a row"
            return None
        self.consecutive_skips = 0
        reason = None
        if len(self.history) >= self.window:
            mean = sum(self.history) / len(self.history)
            std = math.sqrt(sum((x - mean) ** 2 for x in self.history) / len(self.history))
            limit = mean + self.sigma * std
            if loss > limit and (not self.min_ratio or loss > self.min_ratio * mean):
                reason = f"loss {loss:.4f} > mean {mean:.4f} + {self.sigma} x std {std:.4f} over {len(self.history)} steps"
        if reason is None:  # a spike does not enter the window it is judged against
            self.history.append(loss)
            del self.history[: -self.window]
        return reason

    def reset(self) -> None:
        self.consecutive_skips = 0

    def state_dict(self) -> dict:
        return {"history": list(self.history), "consecutive_skips": self.consecutive_skips}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state["history"])
        self.consecutive_skips = state["consecutive_skips"]
