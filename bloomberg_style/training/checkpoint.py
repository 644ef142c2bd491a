"""Checkpoints that a crash at any moment cannot corrupt.

Layout of `RUN/checkpoints/`:

    step_00000100/            DeepSpeed state (model, ZeRO optimizer shards)
        trainer_state.json    ours: step, consumed samples, tokens, schedule, config hash
        rng_rank{r}.json      every rank's RNG state (torch, numpy, python)
    latest                    text file naming the newest complete checkpoint

A checkpoint is written under a `.tmp-` name by all ranks, then (after a barrier) rank 0
writes `trainer_state.json`, renames the folder and finally replaces `latest` atomically.
A folder without `trainer_state.json` is therefore never complete, and loading falls
back to the newest complete one with a message saying why.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bloomberg_style.artifacts.layout import (
    LATEST_FILE,
    STATE_FILE,
    complete_checkpoints,
    find_resume_checkpoint,
    read_trainer_state,
    tag_for_step,
)
from bloomberg_style.atomic import atomic_write_text
from bloomberg_style.atomic import fsync_dir as _fsync_dir
from bloomberg_style.training.distributed import DistInfo, barrier

__all__ = [  # the layout names are artifacts/layout.py's; checkpoint writers import them from here too
    "LATEST_FILE",
    "STATE_FILE",
    "atomic_write_text",
    "complete_checkpoints",
    "find_resume_checkpoint",
    "load_checkpoint",
    "needs_reshard",
    "prune_checkpoints",
    "read_trainer_state",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "tag_for_step",
]


def rng_state() -> dict[str, Any]:
    """Every RNG this process uses, as plain JSON (no pickle on load)."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state().tolist(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_version, list(py_internal), py_gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def save_checkpoint(
    engine,
    ckpt_dir: Path,
    step: int,
    trainer_state: dict[str, Any],
    dist: DistInfo,
    keep_last: int,
    keep: set[str],
    before_publish: Callable[[], None] | None = None,
) -> Path:
    """Write checkpoint `step` atomically on all ranks; returns its folder.

    `before_publish` runs on every rank after the shards are written and before the
    folder is renamed and `latest` moved (fault-injection tests kill the process there).
    """
    tag = tag_for_step(step)
    tmp_tag = f".tmp-{tag}"
    final = ckpt_dir / tag
    if dist.is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(ckpt_dir / tmp_tag, ignore_errors=True)  # left by a crash mid-save
    barrier()
    engine.save_checkpoint(str(ckpt_dir), tag=tmp_tag, save_latest=False)
    atomic_write_text(ckpt_dir / tmp_tag / f"rng_rank{dist.rank}.json", json.dumps(rng_state()))
    barrier()  # every rank has finished writing its shards
    if before_publish is not None:
        before_publish()
    if dist.is_main:
        atomic_write_text(ckpt_dir / tmp_tag / STATE_FILE, json.dumps(trainer_state, indent=1))
        if final.exists():  # the same step saved again (e.g. after a rollback)
            shutil.rmtree(final)
        os.replace(ckpt_dir / tmp_tag, final)
        _fsync_dir(ckpt_dir)
        atomic_write_text(ckpt_dir / LATEST_FILE, tag + "\n")
        prune_checkpoints(ckpt_dir, keep_last, keep | {tag})
    barrier()
    return final


def prune_checkpoints(ckpt_dir: Path, keep_last: int, keep: set[str]) -> list[Path]:
    """Delete complete checkpoints beyond the newest `keep_last`, sparing the names in `keep`."""
    complete = complete_checkpoints(ckpt_dir)
    doomed = [p for p in complete[:-keep_last] if p.name not in keep]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


UNIVERSAL = "universal"


def needs_reshard(path: Path, world_size: int, zero_stage: int) -> bool:
    """True if a checkpoint was written on another rank count or ZeRO stage."""
    saved = read_trainer_state(path)
    return saved.get("world_size") != world_size or saved.get("zero_stage", zero_stage) != zero_stage


def load_checkpoint(engine, path: Path, dist: DistInfo, universal: bool = False) -> dict[str, Any]:
    """Load DeepSpeed state, this rank's RNG and our trainer state from a complete checkpoint."""
    load_dir, tag = (path, UNIVERSAL) if universal else (path.parent, path.name)
    load_path, _ = engine.load_checkpoint(
        str(load_dir), tag=tag, load_optimizer_states=True, load_lr_scheduler_states=False
    )
    if load_path is None:
        raise RuntimeError(f"DeepSpeed could not load the checkpoint at {path}")
    rng_file = path / f"rng_rank{dist.rank}.json"
    if rng_file.is_file():
        set_rng_state(json.loads(rng_file.read_text(encoding="utf-8")))
    return read_trainer_state(path)
