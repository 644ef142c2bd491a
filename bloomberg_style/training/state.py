"""Everything that decides what a run does next, in one object with snapshot / restore.

A checkpoint's `trainer_state.json` is `RunState.snapshot()` plus a few facts about the
run (config hash, model shape); loading it is `restore()`. A rollback is the same two
calls: restore the checkpoint, then restore the part of the present that must outlive
it (`ROLLBACK_KEEPS`), so no piece of state is carried over by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bloomberg_style.controllers import LRController, SpikeMonitor
from bloomberg_style.training.data_order import DataOrder


@dataclass
class TrainerState:
    """The run's counters and tags (saved flat at the top of trainer_state.json)."""

    step: int = 0  # optimizer steps done (skipped ones included)
    consumed_samples: int = 0  # global position in the data order
    tokens_seen: int = 0  # tokens actually trained on (skipped windows excluded)
    skipped_steps: int = 0  # non-finite steps DeepSpeed did not apply
    rollbacks: int = 0
    skipped_windows: list[list[int]] = field(default_factory=list)  # [from, to) data positions
    best_tag: str = ""  # checkpoint with the best validation metric
    anchor_tag: str = ""  # checkpoint at the start of the current plateau window (rollback target)


COUNTERS = tuple(f.name for f in fields(TrainerState))

# What a rollback keeps from the present instead of taking it from the checkpoint.
# Interventions made since that checkpoint (LR drops, dropout, decay) outlive it; so do the
# rollback count, the skipped data windows and the best checkpoint (best on any branch).
ROLLBACK_KEEPS = ("schedule", "dropout", "weight_decay", "rollbacks", "skipped_windows", "best_tag")
# A controller rollback (to the plateau's start) also keeps the controller's progress and
# the data order: it goes back in weights, not in decisions.
ANCHOR_ROLLBACK_KEEPS = (*ROLLBACK_KEEPS, "controller", "data_order")


class EngineKnobs:
    """Dropout and weight decay as the engine holds them (controllers change them mid-run)."""

    def __init__(self, engine, dropout: dict[str, float], weight_decay: float):
        self.engine = engine
        self.dropout = dict(dropout)
        self.weight_decay = weight_decay

    def set_dropout(self, attention: float | None = None, hidden: float | None = None) -> None:
        self.engine.module.set_dropout(attention=attention, hidden=hidden)
        if attention is not None:
            self.dropout["attention"] = attention
        if hidden is not None:
            self.dropout["hidden"] = hidden

    def set_weight_decay(self, value: float) -> None:
        for group in self.engine.optimizer.param_groups:
            if group["weight_decay"] > 0:  # groups without decay (norms, biases) stay at 0
                group["weight_decay"] = value
        self.weight_decay = value


class RunState:
    """Counters, schedule, data order, controller, spike monitor, engine knobs, last eval."""

    def __init__(self, schedule, order: DataOrder, controller: LRController, spikes: SpikeMonitor,
                 knobs: EngineKnobs):  # fmt: skip
        self.counters = TrainerState()
        self.schedule = schedule
        self.order = order
        self.controller = controller
        self.spikes = spikes
        self.knobs = knobs
        self.last_valid: dict[str, float] = {}

    def snapshot(self) -> dict[str, Any]:
        """Plain, JSON-ready copy of the whole state."""
        return {
            **asdict(self.counters),
            "schedule": self.schedule.state_dict(),
            "data_order": self.order.state_dict(),
            "controller": self.controller.state_dict(),
            "spikes": self.spikes.state_dict(),
            "dropout": dict(self.knobs.dropout),
            "weight_decay": self.knobs.weight_decay,
            "last_valid": dict(self.last_valid),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Apply the parts of a snapshot that it holds (the engine's knobs included)."""
        counters = {k: snap[k] for k in COUNTERS if k in snap}
        self.counters = TrainerState(**{**asdict(self.counters), **counters})
        if "schedule" in snap:
            self.schedule.load_state_dict(snap["schedule"])
        if "data_order" in snap:
            self.order.load_state_dict(snap["data_order"])
        if "controller" in snap:
            self.controller.load_state_dict(snap["controller"])
        if "spikes" in snap:
            self.spikes.load_state_dict(snap["spikes"])
        if "dropout" in snap:
            self.knobs.set_dropout(**snap["dropout"])
        if "weight_decay" in snap:
            self.knobs.set_weight_decay(snap["weight_decay"])
        if "last_valid" in snap:
            self.last_valid = dict(snap["last_valid"])

    def load_checkpoint_state(self, saved: dict[str, Any]) -> None:
        """Restore from trainer_state.json: what an older file lacks starts from its default."""
        for key in ("schedule", "controller", "spikes", "dropout", "weight_decay"):
            if key not in saved:
                raise KeyError(f"trainer_state.json has no {key!r}")
        self.restore({**asdict(TrainerState()), "data_order": {}, "last_valid": {}, **saved})
