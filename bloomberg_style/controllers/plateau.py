"""Plateau detection on a validation metric.

The metric is first smoothed by an exponential moving average whose weight is given per
unit of a clock: `alpha` per evaluation (elapsed = 1), per step or per token (elapsed =
the steps or tokens since the previous evaluation, so the newest value weighs
1 - (1 - alpha) ** elapsed). Per step, BloombergGPT's 0.001 is a ~1,000-step time
constant whatever the evaluation interval.

"Flat" means: the smoothed metric has stayed within `threshold` of its best for
`patience` steps (or tokens). The window starts at the earliest evaluation whose smoothed
value is within `threshold` of the current best, so a chance new minimum a little below
the best (noise) moves the start only to where the curve was that close, instead of
restarting the wait as a plain "new best" rule would. Set `threshold` above the noise
left after smoothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class PlateauDetector:
    patience: float
    threshold: float = 0.0
    alpha: float = 0.0  # 0 = no smoothing; the weight per unit of `elapsed` (see update)
    best: float = float("inf")
    smoothed: float | None = None
    since: float = 0.0  # clock value (step or tokens) where the current flat window began
    since_step: int = 0  # the step where the current flat window began (the plateau's start)
    floor: float = float("-inf")  # clock of the last reset: a window never starts before it
    floor_step: int = 0
    # Running minima of the smoothed metric as [clock, step, value]; value strictly falls.
    records: list[list[float]] = field(default_factory=list)

    def update(self, value: float, clock: float, step: int = 0, elapsed: float = 1.0) -> bool:
        """Feed one evaluation at `clock`; True if the metric has plateaued.

        `elapsed` is how many smoothing units (evaluations, steps or tokens) passed since
        the previous evaluation.
        """
        if self.alpha and self.smoothed is not None:
            weight = 1.0 - (1.0 - self.alpha) ** max(elapsed, 0.0)
            self.smoothed = weight * value + (1.0 - weight) * self.smoothed
        else:
            self.smoothed = value
        if not self.records and self.best < float("inf"):  # state from before records existed
            self.records = [[self.since, self.since_step, self.best]]
        if not self.records or self.smoothed < self.records[-1][2]:
            self.records.append([clock, step, self.smoothed])
        self.best = self.records[-1][2]
        while self.records[0][2] > self.best + self.threshold:
            self.records.pop(0)
        start_clock, start_step, _ = self.records[0]
        if start_clock >= self.floor:
            self.since, self.since_step = start_clock, int(start_step)
        else:
            self.since, self.since_step = self.floor, self.floor_step
        return clock - self.since >= self.patience

    def reset(self, clock: float, step: int = 0) -> None:
        """Start a new patience window (after an intervention); the best is kept."""
        self.floor, self.floor_step = clock, step
        self.since, self.since_step = clock, step

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
