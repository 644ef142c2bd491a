"""The training loop: global sample positions, micro-batches, eval per domain, checkpoints.

Data position is global: step k consumes samples [k*B, (k+1)*B) of the (deterministic)
blended dataset, rank r takes its contiguous slice of that window. Nothing about the
data state depends on the number of ranks or on iterator state, so resume is exact and
can happen on a different number of ranks.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from bloomberg_style.config import RunConfig
from bloomberg_style.model.flops import achieved_tflops, flops_per_token
from bloomberg_style.training import checkpoint as ckpt
from bloomberg_style.training.distributed import DistInfo, all_reduce_sum, barrier
from bloomberg_style.training.metrics import MetricsLogger
from bloomberg_style.training.plot import plot_losses
from bloomberg_style.training.schedule import WarmupCosineSchedule


@dataclass
class TrainerState:
    step: int = 0  # optimizer steps done
    consumed_samples: int = 0  # global position in the training dataset
    tokens_seen: int = 0
    skipped_steps: int = 0


class Trainer:
    def __init__(
        self,
        cfg: RunConfig,
        dist: DistInfo,
        engine,
        train_dataset,
        valid_datasets: dict[str, Any],
        schedule: WarmupCosineSchedule,
        num_parameters: int,
        model_config: dict[str, Any],
    ):
        self.cfg = cfg
        self.dist = dist
        self.engine = engine
        self.train_dataset = train_dataset
        self.valid_datasets = valid_datasets
        self.schedule = schedule
        self.metrics = MetricsLogger(
            cfg, cfg.run_dir, enabled=False
        )  # replaced once the resume step is known
        self.model_config = model_config  # saved in every checkpoint: it is self-describing
        self.model_shape = {
            k: model_config[k] for k in ("vocab_size", "hidden_size", "num_layers", "num_heads")
        }
        self.state = TrainerState()
        self.run_dir = cfg.run_dir
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.accum = cfg.train.grad_accumulation(dist.world_size)
        self.seq_len = cfg.data.seq_len
        self.flops_per_token = flops_per_token(
            _Shape(model_config["num_layers"], model_config["hidden_size"]), num_parameters, self.seq_len
        )
        self.last_valid: dict[str, float] = {}

    # ---- data -------------------------------------------------------------------------
    def micro_batches(self, consumed: int) -> list[list[int]]:
        """This rank's micro-batches (sample indices) for the step starting at `consumed`."""
        per_rank = self.cfg.train.global_batch_size // self.dist.world_size
        start = consumed + self.dist.rank * per_rank
        mb = self.cfg.train.micro_batch_size
        return [list(range(start + i * mb, start + (i + 1) * mb)) for i in range(self.accum)]

    def _collate(self, dataset, indices: list[int]) -> dict[str, torch.Tensor]:
        samples = [dataset[i] for i in indices]
        device = self.dist.device
        return {
            key: torch.stack([torch.as_tensor(s[key]) for s in samples]).to(device)
            for key in ("tokens", "labels", "loss_mask")
        }

    # ---- one optimizer step -------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        lr = self.schedule.lr_at(self.state.step)
        for group in self.engine.optimizer.param_groups:
            group["lr"] = lr
        self.engine.train()
        losses = []
        for indices in self.micro_batches(self.state.consumed_samples):
            batch = self._collate(self.train_dataset, indices)
            loss = self.engine(batch["tokens"], labels=batch["labels"], loss_mask=batch["loss_mask"])
            self.engine.backward(loss)
            self.engine.step()
            losses.append(loss.detach().float().item())
        total, count = all_reduce_sum([sum(losses), len(losses)], self.dist.device)
        grad_norm = self.engine.get_global_grad_norm()
        self.state.step += 1
        self.state.consumed_samples += self.cfg.train.global_batch_size
        self.state.tokens_seen += self.cfg.train.global_batch_size * self.seq_len
        return {
            "loss": total / count,
            "lr": lr,
            "grad_norm": float(grad_norm) if grad_norm is not None else math.nan,
        }

    # ---- evaluation ------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean loss per validation token, per domain, over the whole split (or eval_samples)."""
        self.engine.eval()
        results = {}
        mb = self.cfg.train.micro_batch_size
        for name, dataset in self.valid_datasets.items():
            n = len(dataset)
            if self.cfg.train.eval_samples:
                n = min(n, self.cfg.train.eval_samples)
            mine = list(range(self.dist.rank, n, self.dist.world_size))
            loss_sum, tokens = 0.0, 0.0
            # Every rank runs the same number of forward passes (ZeRO-3 gathers collectively).
            passes = math.ceil(math.ceil(n / self.dist.world_size) / mb)
            for p in range(passes):
                indices = mine[p * mb : (p + 1) * mb]
                real = len(indices)
                if real == 0:
                    indices = [0]
                batch = self._collate(dataset, indices)
                mask = (batch["labels"] != -100) & (batch["loss_mask"] > 0)
                loss = self.engine(batch["tokens"], labels=batch["labels"], loss_mask=batch["loss_mask"])
                if real:
                    loss_sum += loss.float().item() * mask.sum().item()
                    tokens += mask.sum().item()
            loss_sum, tokens = all_reduce_sum([loss_sum, tokens], self.dist.device)
            results[name] = loss_sum / max(tokens, 1.0)
        self.engine.train()
        self.last_valid = results
        return results

    # ---- checkpoints -------------------------------------------------------------------
    def trainer_state(self) -> dict[str, Any]:
        return {
            **asdict(self.state),
            "schedule": self.schedule.state_dict(),
            "config_hash": self.cfg.hash(),
            "model_shape": self.model_shape,
            "model_config": self.model_config,
            "world_size": self.dist.world_size,
            "last_valid": self.last_valid,
        }

    def save(self) -> Path:
        path = ckpt.save_checkpoint(
            self.engine,
            self.ckpt_dir,
            self.state.step,
            self.trainer_state(),
            self.dist,
            self.cfg.train.keep_last,
            set(),
        )
        self.metrics.event(self.state.step, "checkpoint", path=str(path))
        return path

    def resume(self) -> bool:
        """Load the newest complete checkpoint if there is one; True if resumed."""
        path = ckpt.find_resume_checkpoint(self.ckpt_dir, log=self._log)
        if path is None:
            return False
        saved = ckpt.read_trainer_state(path)
        if saved.get("model_shape") != self.model_shape:
            raise RuntimeError(
                f"refusing to resume from {path}: the model shape changed from "
                f"{saved.get('model_shape')} to {self.model_shape}; use a new run name"
            )
        if saved.get("config_hash") != self.cfg.hash():
            self._log(f"note: the config differs from the one checkpoint {path.name} was written with")
        state = ckpt.load_checkpoint(self.engine, path, self.dist)
        for key in asdict(self.state):
            setattr(self.state, key, state[key])
        self.schedule.load_state_dict(state["schedule"])
        self.last_valid = state.get("last_valid", {})
        self._log(f"resumed from {path} at step {self.state.step} ({self.state.tokens_seen:,} tokens)")
        return True

    # ---- the loop --------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        cfg = self.cfg.train
        start_step = self.state.step
        if start_step > 0:
            self.metrics.event(start_step, "resume", label="resume")
        end = min(cfg.steps, cfg.exit_at_step) if cfg.exit_at_step else cfg.steps
        if start_step >= end:
            self._log(
                f"nothing to do: the run is at step {start_step} and stops at {end} (train.steps={cfg.steps})"
            )
            return self.summary()
        if start_step == 0:
            valid = self.evaluate()
            self.metrics.log(0, {f"valid/{k}/loss": v for k, v in valid.items()})
            self._log("step 0 validation loss: " + _fmt(valid))
        bar = tqdm(
            total=cfg.steps,
            initial=start_step,
            disable=not (self.dist.is_main and self.cfg.logging.progress),
            desc=self.cfg.name,
            unit="step",
            dynamic_ncols=True,
        )
        window_tokens, window_start = 0, time.perf_counter()
        while self.state.step < end:
            stats = self.train_step()
            step = self.state.step
            window_tokens += cfg.global_batch_size * self.seq_len
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{stats['lr']:.2e}")
            if step % cfg.log_interval == 0 or step == cfg.steps:
                elapsed = time.perf_counter() - window_start
                tps = window_tokens / elapsed
                tflops = achieved_tflops(self.flops_per_token, window_tokens, elapsed, self.dist.world_size)
                self.metrics.log(
                    step,
                    {
                        **stats,
                        "tokens": self.state.tokens_seen,
                        "tokens_per_s": tps,
                        "tflops_per_device": tflops,
                        "global_batch": cfg.global_batch_size,
                    },
                )
                window_tokens, window_start = 0, time.perf_counter()
            if step % cfg.eval_interval == 0 or step == cfg.steps:
                valid = self.evaluate()
                self.metrics.log(step, {f"valid/{k}/loss": v for k, v in valid.items()})
                self._log(f"step {step}: validation loss " + _fmt(valid))
                window_start = time.perf_counter()
            if step % cfg.save_interval == 0 or step in (cfg.steps, end):
                self.save()
                window_start = time.perf_counter()
        bar.close()
        if self.dist.is_main:
            plot_losses(self.run_dir)
        barrier()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return {"step": self.state.step, "tokens": self.state.tokens_seen, "valid": self.last_valid}

    def _log(self, message: str) -> None:
        if self.dist.is_main:
            tqdm.write(message)


@dataclass
class _Shape:
    num_layers: int
    hidden_size: int


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in values.items())
