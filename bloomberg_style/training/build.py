"""One way to set up a run, for pretraining and every SFT stage alike.

build_run: the run folder and its config.yaml (rank 0), the seeds, the model (built
after seeding, so its initialisation is the seed's), DeepSpeed, the trainer, resume,
and the metrics logger, opened once the resume step is known (lines logged after the
checkpoint are redone, so they are dropped).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bloomberg_style.config import RunConfig
from bloomberg_style.training.distributed import DistInfo, barrier
from bloomberg_style.training.loop import Trainer
from bloomberg_style.training.metrics import MetricsLogger
from bloomberg_style.training.preemption import refuse_if_gave_up
from bloomberg_style.training.task import TrainingTask


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class BuiltModel:
    module: torch.nn.Module  # what DeepSpeed wraps (a LoRA model included)
    config: dict[str, Any]  # the network's config, saved in every checkpoint
    num_parameters: int  # counted for FLOPs


@dataclass
class Run:
    trainer: Trainer
    metrics: MetricsLogger
    num_parameters: int

    @property
    def engine(self):
        return self.trainer.engine

    def fit(self) -> dict[str, Any]:
        """Train to the end (or the stop); the metrics logger is closed whatever happens."""
        try:
            return self.trainer.fit()
        finally:
            self.metrics.close()


def write_run_folder(cfg: RunConfig, dist: DistInfo, extra: Callable[[Path], None] | None = None) -> None:
    """Rank 0 writes config.yaml (and `extra`'s files) into the run folder; all ranks wait."""
    if dist.is_main:
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        (cfg.run_dir / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
        if extra is not None:
            extra(cfg.run_dir)
    barrier()


def build_run(
    cfg: RunConfig,
    dist: DistInfo,
    build_model: Callable[[dict[str, Any]], BuiltModel],
    task: TrainingTask,
    schedule,
    weight_decay: float,
    extra_files: Callable[[Path], None] | None = None,
) -> Run:
    """Everything up to the first step; `run.fit()` trains."""
    import deepspeed

    from bloomberg_style.model import param_groups
    from bloomberg_style.training.deepspeed_config import build_deepspeed_config
    from bloomberg_style.training.memory_report import report_memory
    from bloomberg_style.training.resume import prepare_reshard, resume

    refuse_if_gave_up(cfg.run_dir)  # a torchrun restart of a run that stopped itself
    write_run_folder(cfg, dist, extra_files)
    set_seed(cfg.train.seed)
    ds_config = build_deepspeed_config(cfg, dist.world_size, dist.accelerator)
    model = build_model(ds_config)  # under ZeRO-3, built partitioned (training/engine_build.py)
    if cfg.train.compile:
        from bloomberg_style.training.regional_compile import compile_blocks

        compile_blocks(model.module, cfg.train.zero_stage)
    if prepare_reshard(cfg, dist):
        ds_config["checkpoint"] = {**ds_config.get("checkpoint", {}), "load_universal": True}
    engine, _, _, _ = deepspeed.initialize(
        model=model.module, model_parameters=param_groups(model.module, weight_decay), config=ds_config
    )
    trainer = Trainer(cfg, dist, engine, task, schedule, model.num_parameters, model.config)
    resume(trainer)
    report_memory("after build", trainer.say)  # every rank's peak before the first step
    trainer.metrics = MetricsLogger(cfg, cfg.run_dir, enabled=dist.is_main, resume_step=trainer.counters.step)
    return Run(trainer, trainer.metrics, model.num_parameters)
