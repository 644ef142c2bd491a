"""Resharding a checkpoint for a new rank count or ZeRO stage, safely at scale.

DeepSpeed's universal format stores each parameter's FP32 weights and Adam moments whole,
so any rank count and stage can load them. Converting a 50B checkpoint takes a long time
on one host, so two things matter: the conversion runs with several workers, and the
other ranks do not sit in a collective (which times out after the process group's
timeout, 30 minutes by default) while rank 0 converts. They poll the shared checkpoint
folder for the finished result, or for rank 0's error file, instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bloomberg_style.training import checkpoint as ckpt
from bloomberg_style.training.distributed import DistInfo, barrier, broadcast_object

ERROR_FILE = ".universal.error"
MAX_WORKERS = 8  # ds_to_universal's extract workers each hold one rank's optimizer shard


def conversion_workers() -> int:
    """Worker processes for ds_to_universal: the cores this process may use, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def universal_ready(path: Path) -> bool:
    """The universal folder appears by one atomic rename, so its existence means complete."""
    return (path / ckpt.UNIVERSAL).is_dir()


def convert(path: Path, workers: int, log=print) -> Path:
    """Write `path/universal` with `workers` extract and merge workers (atomic rename)."""
    out = path / ckpt.UNIVERSAL
    if universal_ready(path):
        return out
    tmp = path / f".{ckpt.UNIVERSAL}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"converting {path} to a universal checkpoint with {workers} worker(s)")
    cmd = [sys.executable, "-m", "deepspeed.checkpoint.ds_to_universal", "--input_folder", str(path),
           "--output_folder", str(tmp), "--num_extract_workers", str(workers),
           "--num_merge_workers", str(workers)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ds_to_universal failed on {path}:\n{proc.stderr[-3000:]}")
    os.replace(tmp, out)
    return out


def wait_for_universal(path: Path, attempt: str, poll_s: float = 2.0, log=print) -> None:
    """Block (no collective) until rank 0 finished converting `path` or reported an error."""
    error_file = path / ERROR_FILE
    start = time.monotonic()
    next_note = start + 600
    while not universal_ready(path):
        if error_file.is_file():
            text = error_file.read_text(encoding="utf-8")
            stamp, _, message = text.partition("\n")
            if stamp == attempt:
                raise RuntimeError(message)
        if time.monotonic() > next_note:
            log(f"still waiting for rank 0 to convert {path} ({time.monotonic() - start:.0f}s)")
            next_note += 600
        time.sleep(poll_s)


def reshard_for_resume(cfg, dist: DistInfo, workers: int | None = None) -> bool:
    """If the checkpoint to resume was written on another rank count or ZeRO stage,
    convert it to the universal format (rank 0, once); True if the run must load it so."""
    path = ckpt.find_resume_checkpoint(cfg.run_dir / "checkpoints", log=lambda *_: None)
    if path is None or not ckpt.needs_reshard(path, dist.world_size, cfg.train.zero_stage):
        return False
    # A stamp shared before the long part (a quick collective) tells this attempt's error
    # file from one an earlier, failed attempt left.
    attempt = str(broadcast_object(f"{os.getpid()}-{time.time_ns()}"))
    if dist.is_main:
        try:
            convert(path, workers or conversion_workers())
        except Exception as exc:
            ckpt.atomic_write_text(path / ERROR_FILE, f"{attempt}\n{exc}")
            raise
    else:
        wait_for_universal(path, attempt)
    barrier()  # everyone has seen the result: quick
    return True
