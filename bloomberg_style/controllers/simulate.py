"""Replay a validation curve through a run's controller, without training.

`python launch/pretrain.py --config X --simulate-controller CURVE.csv` answers "when would
this config have acted on this curve?" before 50 days are spent finding out. Each row
(step, loss) is one evaluation; the loss stands for the controller's metric (every
domain gets it, so the weighted total is the loss itself). Tokens are the run's own
(batch ramp included). The curve is fixed: after a rollback the simulation goes on with
the curve's next row instead of re-training from the plateau's start, and reports where
the run would have rolled back to.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from bloomberg_style.config import ConfigError, RunConfig
from bloomberg_style.controllers.policy import Decision, LRController


def read_curve(path: str | Path) -> list[tuple[int, float]]:
    """Rows of a CSV with columns step,loss (a header line; steps increasing)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"curve file not found: {path}")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"step", "loss"} <= {n.strip() for n in reader.fieldnames}:
            raise ConfigError(f"{path}: expected a header with columns step,loss, got {reader.fieldnames}")
        curve = []
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): v for k, v in row.items() if k}
            try:
                step, loss = int(row["step"]), float(row["loss"])
            except (TypeError, ValueError):
                raise ConfigError(f"{path}:{line}: cannot read step,loss from {row}") from None
            if not math.isfinite(loss) or step < 0 or (curve and step <= curve[-1][0]):
                raise ConfigError(
                    f"{path}:{line}: step {step}, loss {loss}: steps must increase, losses be finite"
                )
            curve.append((step, loss))
    if not curve:
        raise ConfigError(f"{path}: no rows")
    return curve


def simulate(cfg: RunConfig, curve: list[tuple[int, float]]) -> list[dict[str, Any]]:
    """The controller's decisions on `curve`, one dict each (step, label, lr_factor, ...)."""
    domains = {d.name: d.weight for d in cfg.data.domains} or {"total": 1.0}
    controller = LRController(cfg.controller, domains)
    seq_len = cfg.data.seq_len
    decisions: list[dict[str, Any]] = []
    lr_scale = 1.0

    def record(decision: Decision) -> None:
        nonlocal lr_scale
        action = decision.action
        factor = action.lr_factor if action else 1.0
        lr_scale *= factor
        event = decision.event()
        out = {
            "step": decision.step,
            "label": event.pop("label"),
            "lr_factor": factor,
            "lr_scale": lr_scale,
            "peak_lr": cfg.optim.lr * lr_scale,
            "stop": decision.stop,
            "rollback_to_step": (event.get("plateau_start_step") if action and action.rollback else None),
        }
        event.pop("action", None)
        decisions.append({**out, **event})

    previous = curve[0][0]
    for step, loss in curve:
        if cfg.controller.mode == "scripted":  # acts on the step count, between evaluations too
            for s in range(previous, step + 1):
                decision = controller.on_step(s)
                if decision is not None:
                    record(decision)
            previous = step + 1
        valid = dict.fromkeys(domains, loss)
        controller.is_new_best(valid, step)
        decision = controller.on_eval(step, cfg.train.samples_before(step) * seq_len, valid)
        if decision is not None:
            record(decision)
        if controller.stopped:
            break
    return decisions


def main(cfg: RunConfig, curve_path: str) -> int:
    """`--simulate-controller`: print each decision as a JSON line; exit 2 on a bad curve."""
    import json
    import sys

    try:
        curve = read_curve(curve_path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if cfg.controller.mode == "off":
        print("controller.mode is off: no decisions to simulate", file=sys.stderr)
    for decision in simulate(cfg, curve):
        print(json.dumps(decision))
    return 0
