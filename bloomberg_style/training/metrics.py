"""Where a run's numbers go: metrics.jsonl, events.jsonl and wandb (offline unless a key is set).

Only rank 0 writes. JSONL lines are flushed as they are written so a killed run keeps
everything it logged; a resumed run appends, dropping nothing it did not redo.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from bloomberg_style.config import ConfigError, RunConfig


class MetricsLogger:
    def __init__(self, cfg: RunConfig, run_dir: Path, enabled: bool, resume_step: int = 0):
        self.enabled = enabled
        self.run_dir = run_dir
        self.metrics_path = run_dir / "metrics.jsonl"
        self.events_path = run_dir / "events.jsonl"
        self._wandb = None
        self._tensorboard = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        # A resumed run redoes the steps after its checkpoint: drop their old lines.
        for path in (self.metrics_path, self.events_path):
            _truncate_after(path, resume_step)
        self._wandb = _start_wandb(cfg, run_dir)
        self._tensorboard = _start_tensorboard(run_dir) if cfg.logging.tensorboard else None

    def log(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **values}
        _append(self.metrics_path, record)
        numbers = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self._wandb is not None:
            self._wandb.log(numbers, step=step)
        if self._tensorboard is not None:
            for key, value in numbers.items():
                self._tensorboard.add_scalar(key, value, step)
            self._tensorboard.flush()

    def event(self, step: int, kind: str, **details: Any) -> None:
        """A discrete event (checkpoint, LR drop, skipped step...) for people and plots."""
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), "event": kind, **details}
        _append(self.events_path, record)
        if self._wandb is not None:
            self._wandb.log({f"events/{kind}": 1}, step=step)

    def run_facts(self, **facts: Any) -> None:
        """Facts about the whole run (which attention kernel runs, ...) in wandb's run config, where
        runs are filtered and compared; events.jsonl has them with the step they were found at."""
        if self.enabled and self._wandb is not None:
            self._wandb.config.update(facts, allow_val_change=True)

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
    return records


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def _truncate_after(path: Path, step: int) -> None:
    records = read_jsonl(path)
    kept = [r for r in records if r.get("step", 0) <= step]
    if len(kept) != len(records):
        path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")


def _start_tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError("logging.tensorboard is true but the tensorboard package is not installed") from exc
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _start_wandb(cfg: RunConfig, run_dir: Path):
    mode = cfg.logging.wandb
    if mode == "disabled":
        return None
    if mode == "auto":
        mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    import wandb

    id_file = run_dir / "wandb_id.txt"
    run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:8]
    id_file.write_text(run_id)
    return wandb.init(
        project=cfg.logging.wandb_project,
        name=cfg.name,
        id=run_id,
        resume="allow",
        dir=str(run_dir),
        mode=mode,
        config=cfg.to_dict(),
    )
