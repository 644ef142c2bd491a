"""Resume a run from its newest complete checkpoint, on any number of ranks.

A checkpoint written on another rank count or ZeRO stage is converted once to DeepSpeed's
universal format (rank 0) before the engine is built, then loaded from it. A checkpoint
whose files are damaged falls back to the previous complete one, all ranks agreeing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bloomberg_style.config import RunConfig
from bloomberg_style.training import checkpoint as ckpt
from bloomberg_style.training.distributed import DistInfo, all_reduce_sum

if TYPE_CHECKING:
    from bloomberg_style.training.loop import Trainer


def prepare_reshard(cfg: RunConfig, dist: DistInfo) -> bool:
    """Convert the checkpoint to resume to universal format if the rank count or ZeRO stage
    changed (rank 0, several workers; the other ranks poll, see reshard.py); True if the engine
    must load it that way."""
    from bloomberg_style.training.reshard import reshard_for_resume

    return reshard_for_resume(cfg, dist)


def resume(trainer: Trainer) -> bool:
    """Load the newest complete checkpoint if there is one; True if resumed."""
    cfg, dist, log = trainer.cfg, trainer.dist, trainer.say
    path = ckpt.find_resume_checkpoint(trainer.ckpt_dir, log=log)
    if path is None:
        return False
    saved = ckpt.read_trainer_state(path)
    if saved.get("model_shape") != trainer.model_shape:
        raise RuntimeError(
            f"refusing to resume from {path}: the model shape changed from "
            f"{saved.get('model_shape')} to {trainer.model_shape}; use a new run name"
        )
    if saved.get("config_hash") != cfg.hash():
        log(f"note: the config differs from the one checkpoint {path.name} was written with")
    if ckpt.needs_reshard(path, dist.world_size, cfg.train.zero_stage):
        log(
            f"resharding {path.name}: written on {saved.get('world_size')} rank(s) with ZeRO "
            f"{saved.get('zero_stage')}, loading on {dist.world_size} with ZeRO {cfg.train.zero_stage}"
        )
        trainer.load(path, universal=True)
    else:
        older = [p for p in reversed(ckpt.complete_checkpoints(trainer.ckpt_dir)) if p.name < path.name]
        for candidate in [path, *older]:
            error = None
            try:
                trainer.load(candidate)
            except Exception as exc:  # every rank must agree before going on
                error = f"{type(exc).__name__}: {exc}"
            (failed,) = all_reduce_sum([1.0 if error else 0.0], dist.device)
            if not failed:
                path = candidate
                break
            log(f"checkpoint {candidate} could not be loaded ({error or 'on another rank'}); falling back")
        else:
            raise RuntimeError(f"no checkpoint in {trainer.ckpt_dir} could be loaded")
    c = trainer.counters
    log(f"resumed from {path} at step {c.step} ({c.tokens_seen:,} tokens)")
    return True
