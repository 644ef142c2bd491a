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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bloomberg_style.atomic import atomic_write_file
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


ZERO012_MARK = ".loadable_by_zero012"  # in the universal folder: the gaps below are filled


def universal_ready(path: Path, zero_stage: int = 3) -> bool:
    """The universal folder appears by one atomic rename, so its existence means complete; a
    ZeRO 0-2 engine also needs the mark that loadable_by_zero012 wrote last."""
    out = path / ckpt.UNIVERSAL
    return out.is_dir() and (zero_stage == 3 or (out / ZERO012_MARK).is_file())


def convert(path: Path, workers: int, zero_stage: int = 3, log=print) -> Path:
    """Write `path/universal` with `workers` extract and merge workers (atomic rename), loadable
    by an engine of `zero_stage`."""
    out = path / ckpt.UNIVERSAL
    if not out.is_dir():
        tmp = path / f".{ckpt.UNIVERSAL}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"converting {path} to a universal checkpoint with {workers} worker(s)")
        cmd = [sys.executable, "-m", "deepspeed.checkpoint.ds_to_universal", "--input_folder", str(path),
               "--output_folder", str(tmp), "--num_extract_workers", str(workers),
               "--num_merge_workers", str(workers)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ds_to_universal failed on {path}:\n{proc.stderr[-3000:]}")
        if zero_stage < 3:
            loadable_by_zero012(tmp, workers)
        os.replace(tmp, out)
    elif not universal_ready(path, zero_stage):  # converted earlier for a ZeRO-3 engine
        log(f"completing {out} for a ZeRO {zero_stage} engine")
        loadable_by_zero012(out, workers)
    return out


def loadable_by_zero012(universal: Path, workers: int = 1) -> None:
    """Fill the gaps that keep ds_to_universal's output of a ZeRO-3 checkpoint (DeepSpeed 0.19)
    from loading under ZeRO 0-2; every file stays loadable by ZeRO-3, so this is idempotent and
    an interrupted run of it leaves a folder ZeRO-3 can still use.

    - The engine finds its metadata file by stage: `mp_rank_XX_model_states.pt` for ZeRO 0-2,
      `zero_pp_rank_0_mp_rank_XX_model_states.pt` for ZeRO-3, and the conversion keeps only the
      source's names. Each gets the other name too (a hard link). Universal loading takes the
      weights from zero/, so that file only carries counters and client state.
    - zero/optimizer_state.pt of a ZeRO-3 source has no `ds_version`, which the ZeRO 1-2 loader
      requires: it gets this DeepSpeed's, the one that converted it.
    - Per-parameter files of a ZeRO-3 source are bare flat tensors where ZeRO 1-2 reads
      {"param": tensor}, and Adam's step count sits only in optimizer_state.pt: each file is
      wrapped (in its parameter's shape) and each parameter folder gets the step.pt ZeRO 1-2 reads.
    The last step writes ZERO012_MARK.
    """
    import deepspeed
    import torch
    from deepspeed.checkpoint.constants import DS_VERSION, OPTIMIZER_STATE_DICT, PARAM

    states = sorted(universal.glob("*model_states.pt"))
    shapes: dict[str, torch.Size] = {}  # every rank's metadata file lists every parameter's shape
    if states:
        for group in torch.load(states[0], map_location="cpu", weights_only=True).get("param_shapes") or []:
            shapes.update(group)
    for path in states:
        name = path.name
        if name.startswith("zero_pp_rank_0_mp_rank_"):
            twin = universal / name.removeprefix("zero_pp_rank_0_")
        elif name.startswith("mp_rank_"):
            twin = universal / f"zero_pp_rank_0_{name}"
        else:
            continue
        if not twin.exists():
            try:
                os.link(path, twin)
            except OSError:  # a file system without hard links
                shutil.copyfile(path, twin)
    zero = universal / "zero"
    state_file = zero / "optimizer_state.pt"
    with torch.serialization.safe_globals(_optimizer_state_classes()):
        state = torch.load(state_file, map_location="cpu", weights_only=True)
    if not state.get(DS_VERSION):
        state[DS_VERSION] = deepspeed.__version__
        _save_atomic(torch, state, state_file)
    adam = state.get(OPTIMIZER_STATE_DICT, {}).get("state") or {}
    step = next((s["step"] for s in adam.values() if "step" in s), None)

    def complete(folder: Path) -> None:
        for key in ("fp32", "exp_avg", "exp_avg_sq"):
            file = folder / f"{key}.pt"
            if not file.is_file():
                continue
            value = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
            if torch.is_tensor(value):
                shape = shapes.get(folder.name)
                full = value.view(shape) if shape is not None and shape.numel() == value.numel() else value
                _save_atomic(torch, {PARAM: full}, file)
        if step is not None and not (folder / "step.pt").is_file():
            _save_atomic(torch, step, folder / "step.pt")

    # One parameter per task (at 50B the files are 600 GB: I/O-bound, so threads; memory-mapped
    # reads keep each task's memory at one tensor's page cache, not a copy).
    folders = sorted(p for p in zero.iterdir() if p.is_dir())
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(complete, folders))
    ckpt.atomic_write_text(universal / ZERO012_MARK, f"deepspeed {deepspeed.__version__}\n")


def _save_atomic(torch, obj, path: Path) -> None:
    atomic_write_file(path, lambda tmp: torch.save(obj, tmp))


def _optimizer_state_classes() -> list:
    """The DeepSpeed classes zero/optimizer_state.pt holds besides tensors and plain values."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum

    return [LossScaler, DynamicLossScaler, ZeroStageEnum]


def wait_for_universal(path: Path, attempt: str, zero_stage: int = 3, poll_s: float = 2.0, log=print) -> None:
    """Block (no collective) until rank 0 finished converting `path` or reported an error."""
    error_file = path / ERROR_FILE
    start = time.monotonic()
    next_note = start + 600
    while not universal_ready(path, zero_stage):
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
            convert(path, workers or conversion_workers(), cfg.train.zero_stage)
        except Exception as exc:
            ckpt.atomic_write_text(path / ERROR_FILE, f"{attempt}\n{exc}")
            raise
    else:
        wait_for_universal(path, attempt, cfg.train.zero_stage)
    barrier()  # everyone has seen the result: quick
    return True
