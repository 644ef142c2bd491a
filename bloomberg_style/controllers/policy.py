"""The LR controller: turns validation results (or the step count) into interventions.

Plateau mode applies the configured actions in order, one per detected plateau, and
stops when they are exhausted and the loss is still flat. Scripted mode applies the
same actions at fixed steps (scaled by `scale`), which replays BloombergGPT's chronicle:
115,500 / 129,900 / 137,100, stop at 146,000. Every decision carries the numbers that
led to it, for events.jsonl. The controller only decides; the trainer acts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bloomberg_style.config import ControllerAction, ControllerSection
from bloomberg_style.controllers.plateau import PlateauDetector

PAPER_CHRONICLE = {"steps": [115_500, 129_900, 137_100], "stop": 146_000, "best": 139_200}


@dataclass
class Decision:
    step: int
    action: ControllerAction | None  # None with stop=True: actions exhausted
    stop: bool
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def event(self) -> dict[str, Any]:
        a = self.action
        return {
            "reason": self.reason,
            "label": (a.label if a and a.label else ("stop" if self.stop else "action")),
            "action": asdict(a) if a else None,
            **self.numbers,
        }


def weighted_total(valid: dict[str, float], weights: dict[str, float]) -> float:
    """Validation losses combined with (normalised) domain weights."""
    total_w = sum(weights[k] for k in valid)
    return sum(valid[k] * weights[k] for k in valid) / total_w


class LRController:
    def __init__(self, cfg: ControllerSection, domain_weights: dict[str, float]):
        self.cfg = cfg
        self.weights = dict(cfg.weights) or dict(domain_weights)
        self.detector = PlateauDetector(cfg.patience, cfg.threshold, cfg.smoothing)
        self.last_eval: tuple[int, int] | None = None  # (step, tokens) of the previous evaluation
        self.last_elapsed = 1.0  # smoothing units between the two evaluations before that
        self.next_action = 0
        self.best_metric = float("inf")  # raw (unsmoothed) metric of the best checkpoint
        self.best_step = -1
        self.stopped = False

    def metric(self, valid: dict[str, float]) -> float:
        if self.cfg.metric == "total":
            return weighted_total(valid, self.weights)
        return valid[self.cfg.metric]

    def is_new_best(self, valid: dict[str, float], step: int) -> bool:
        """Track the best raw validation metric (the checkpoint to keep and export)."""
        value = self.metric(valid)
        if value < self.best_metric:
            self.best_metric, self.best_step = value, step
            return True
        return False

    def on_eval(self, step: int, tokens: int, valid: dict[str, float]) -> Decision | None:
        """Plateau mode: feed an evaluation; maybe decide an intervention."""
        if self.cfg.mode != "plateau" or self.stopped:
            return None
        clock = step if self.cfg.patience_unit == "steps" else tokens
        value = self.metric(valid)
        elapsed = self.smoothing_elapsed(step, tokens)
        if not self.detector.update(value, clock, step, elapsed):
            return None
        numbers = {
            "metric": value,
            "smoothed": self.detector.smoothed,
            "smoothing": self.cfg.smoothing,
            "smoothing_unit": self.cfg.smoothing_unit,
            "best_smoothed": self.detector.best,
            "flat_for": clock - self.detector.since,
            "patience": self.cfg.patience,
            "unit": self.cfg.patience_unit,
            "best_step": self.best_step,
            "plateau_start_step": self.detector.since_step,
        }
        reason = f"within {self.cfg.threshold} of the best smoothed value for {clock - self.detector.since:g} {self.cfg.patience_unit}"
        self.detector.reset(clock, step)
        return self._next(step, reason, numbers)

    def smoothing_elapsed(self, step: int, tokens: int) -> float:
        """Smoothing units since the previous evaluation: 1 per evaluation, or the steps or
        tokens in between. After a rollback (the clock went back) the last gap is reused."""
        previous, self.last_eval = self.last_eval, (step, tokens)
        if self.cfg.smoothing_unit == "evals" or previous is None:
            return 1.0
        gap = step - previous[0] if self.cfg.smoothing_unit == "steps" else tokens - previous[1]
        if gap > 0:
            self.last_elapsed = float(gap)
        return self.last_elapsed

    def on_step(self, step: int) -> Decision | None:
        """Scripted mode: the action whose (scaled) step is `step`, or the scripted stop."""
        if self.cfg.mode != "scripted" or self.stopped:
            return None
        if self.next_action < len(self.cfg.actions):
            action = self.cfg.actions[self.next_action]
            if step >= self.scaled(action.step):
                return self._next(
                    step, f"scripted at step {self.scaled(action.step)}", {"scale": self.cfg.scale}
                )
        if self.cfg.stop_step and step >= self.scaled(self.cfg.stop_step):
            self.stopped = True
            return Decision(step, None, True, f"scripted stop at step {self.scaled(self.cfg.stop_step)}")
        return None

    def scaled(self, step: int) -> int:
        return max(1, round(step * self.cfg.scale))

    def _next(self, step: int, reason: str, numbers: dict[str, Any]) -> Decision | None:
        if self.next_action >= len(self.cfg.actions):
            if not self.cfg.stop_when_exhausted:
                return None
            self.stopped = True
            return Decision(step, None, True, reason + "; actions exhausted", numbers)
        action = self.cfg.actions[self.next_action]
        self.next_action += 1
        if action.stop:
            self.stopped = True
        return Decision(step, action, action.stop, reason, numbers)

    def state_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector.state_dict(),
            "next_action": self.next_action,
            "best_metric": self.best_metric,
            "best_step": self.best_step,
            "stopped": self.stopped,
            "last_eval": list(self.last_eval) if self.last_eval else None,
            "last_elapsed": self.last_elapsed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.detector.load_state_dict(state["detector"])
        self.next_action = state["next_action"]
        self.best_metric = state["best_metric"]
        self.best_step = state["best_step"]
        self.stopped = state["stopped"]
        last = state.get("last_eval")  # absent in checkpoints from before per-step smoothing
        self.last_eval = (int(last[0]), int(last[1])) if last else None
        self.last_elapsed = float(state.get("last_elapsed", 1.0))
