"""What the trainer does when a monitor or controller says so: roll back, drop the LR,
change dropout or weight decay. Each is recorded in events.jsonl with its numbers.

A rollback restores the whole run state from a checkpoint, then restores from a snapshot
of the present what must outlive it (state.ROLLBACK_KEEPS): two calls, nothing by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from bloomberg_style.config import RunConfig
from bloomberg_style.controllers import Decision
from bloomberg_style.training import checkpoint as ckpt
from bloomberg_style.training.preemption import RunStopped
from bloomberg_style.training.state import ANCHOR_ROLLBACK_KEEPS, ROLLBACK_KEEPS, RunState


class Trainer(Protocol):
    """What an intervention needs of the trainer (training/loop.py's Trainer has it all)."""

    cfg: RunConfig
    state: RunState
    ckpt_dir: Path
    metrics: Any

    @property
    def counters(self) -> Any: ...

    def load(self, path: Path) -> None: ...

    def say(self, message: str) -> None: ...


def rollback(trainer: Trainer, reason: str, skip_window: bool, reshuffle: bool, to_anchor: bool) -> None:
    """Back to a checkpoint: the last good one (spike) or the plateau's start (controller)."""
    state, c = trainer.state, trainer.counters
    if c.rollbacks >= trainer.cfg.faults.max_rollbacks and skip_window:
        raise RunStopped(1, f"{reason}; {c.rollbacks} rollbacks already, giving up", gave_up=True)
    anchor = c.anchor_tag
    target = trainer.ckpt_dir / anchor if to_anchor and anchor else None
    target = target or ckpt.find_resume_checkpoint(trainer.ckpt_dir, log=trainer.say)
    if target is None:
        trainer.say(f"{reason}: no checkpoint to roll back to; going on")
        return
    now = state.snapshot()
    trainer.load(target)
    state.restore({k: now[k] for k in (ANCHOR_ROLLBACK_KEEPS if to_anchor else ROLLBACK_KEEPS)})
    c = trainer.counters
    c.rollbacks += 1
    if to_anchor:  # a new patience window starts at the anchor
        state.controller.detector.reset(_clock(trainer), c.step)
        c.anchor_tag = target.name
    if skip_window:  # jump over the data that led to the spike
        c.skipped_windows.append([c.consumed_samples, now["consumed_samples"]])
        c.consumed_samples = now["consumed_samples"]
    if reshuffle:
        state.order.reshuffle_from(c.consumed_samples, trainer.cfg.train.seed + 1000 * c.rollbacks)
    state.spikes.reset()
    trainer.metrics.event(
        now["step"], "rollback", label="rollback", reason=reason, from_step=now["step"], to_step=c.step,
        to_checkpoint=target.name, data_position=c.consumed_samples, reshuffled=reshuffle,
    )  # fmt: skip
    trainer.say(f"rollback at step {now['step']} -> {target.name}: {reason}")


def apply(trainer: Trainer, decision: Decision) -> None:
    """Carry out a controller decision and record it with the numbers behind it."""
    action, state = decision.action, trainer.state
    if action is not None:
        if action.rollback:
            rollback(
                trainer, f"controller: {decision.reason}", skip_window=False, reshuffle=True, to_anchor=True
            )
        if action.lr_factor != 1.0:
            before = state.schedule.peak_lr
            state.schedule.scale(action.lr_factor)
            decision.numbers.update(peak_lr_before=before, peak_lr_after=state.schedule.peak_lr)
        if action.attention_dropout is not None or action.hidden_dropout is not None:
            state.knobs.set_dropout(action.attention_dropout, action.hidden_dropout)
            decision.numbers.update(dropout=dict(state.knobs.dropout))
        if action.weight_decay is not None:
            state.knobs.set_weight_decay(action.weight_decay)
            decision.numbers.update(weight_decay=action.weight_decay)
    kind = "stop" if decision.stop and action is None else "lr_drop"
    trainer.metrics.event(decision.step, kind, **decision.event())
    trainer.say(f"controller at step {decision.step}: {decision.event()['label']} ({decision.reason})")


def _clock(trainer: Trainer) -> int:
    c = trainer.counters
    return c.step if trainer.cfg.controller.patience_unit == "steps" else c.tokens_seen
