"""The training loop: global data positions, batch ramp, evaluation, checkpoints.

Data position is global: a step with global batch B reads positions [p, p+B) of the
run's data order, rank r its contiguous slice. Nothing about the data state depends on
the number of ranks or on iterator state, so resume is exact and can happen on another
number of ranks. Everything that decides something (schedule, controller, spike monitor,
data order) lives in one `RunState`, saved in `trainer_state.json` of every checkpoint.

What differs between pretraining and SFT (data, collate, held-out sets) comes in as a
`TrainingTask`; rollbacks and controller decisions are in interventions.py, resume in
resume.py, fire drills in faults.py, speed in throughput.py, the hang watchdog in watchdog.py.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bloomberg_style.atomic import atomic_write_text
from bloomberg_style.config import RunConfig
from bloomberg_style.controllers import LRController, SpikeMonitor
from bloomberg_style.sizing.flops import detect_peak_tflops, flops_per_token
from bloomberg_style.training import checkpoint as ckpt
from bloomberg_style.training import interventions
from bloomberg_style.training.data_order import DataOrder, rank_micro_batches
from bloomberg_style.training.distributed import DistInfo, all_reduce_sum, barrier
from bloomberg_style.training.faults import FaultDrills
from bloomberg_style.training.memory_report import report_memory
from bloomberg_style.training.metrics import MetricsLogger
from bloomberg_style.training.plot import plot_losses
from bloomberg_style.training.preemption import (
    GAVE_UP_FILE,
    REQUEUE_FILE,
    RunStopped,
    StopRequest,
    requeue_exit_code,
)
from bloomberg_style.training.prefetch import BatchPrefetcher, pin_memory_available
from bloomberg_style.training.probes import engine_settings, layernorm_norms
from bloomberg_style.training.state import EngineKnobs, RunState, TrainerState
from bloomberg_style.training.step import optimizer_step
from bloomberg_style.training.task import TrainingTask, to_device
from bloomberg_style.training.throughput import ThroughputMeter
from bloomberg_style.training.watchdog import HangWatchdog


class Trainer:
    def __init__(self, cfg: RunConfig, dist: DistInfo, engine, task: TrainingTask, schedule,
                 num_parameters: int, model_config: dict[str, Any]):  # fmt: skip
        self.cfg = cfg
        self.dist = dist
        self.engine = engine
        self.task = task
        self.metrics: MetricsLogger | None = None  # opened by build_run once the resume step is known
        self.model_config = model_config  # saved in every checkpoint: it is self-describing
        self.model_shape = {
            k: model_config[k] for k in ("vocab_size", "hidden_size", "num_layers", "num_heads")
        }
        f = cfg.faults
        dropout = {"attention": model_config["attention_dropout"], "hidden": model_config["hidden_dropout"]}
        self.state = RunState(
            schedule,
            DataOrder(len(task.train)),
            LRController(cfg.controller, task.evaluation.weights),
            SpikeMonitor(f.spike_window, f.spike_sigma, f.spike_min_ratio, f.max_consecutive_skips),
            EngineKnobs(engine, dropout, cfg.optim.weight_decay),
        )
        self.run_dir = cfg.run_dir
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.tokens_per_sample = task.tokens_per_sample
        shape = _Shape(model_config["num_layers"], model_config["hidden_size"])
        self.throughput = ThroughputMeter(
            flops_per_token(shape, num_parameters, self.tokens_per_sample),
            flops_per_token(shape, num_parameters, self.tokens_per_sample,
                            recompute=cfg.train.activation_checkpointing),
            dist.world_size,
            cfg.train.peak_tflops or (detect_peak_tflops() if dist.accelerator == "cuda" else None),
        )  # fmt: skip
        self.stop_request = StopRequest(self.run_dir)
        self.faults = FaultDrills(rank=dist.rank)
        self.watchdog = HangWatchdog.from_config(
            cfg.faults, self.run_dir, dist.rank, self.faults.hang_steps()
        )
        self.prefetcher = BatchPrefetcher(
            lambda indices: task.collate([task.train[i] for i in indices]), pin_memory_available(dist.device)
        )

    @property
    def counters(self) -> TrainerState:
        return self.state.counters

    # ---- one optimizer step -------------------------------------------------------------
    def micro_batches(self, position: int, global_batch: int) -> list[list[int]]:
        """This rank's micro-batches (dataset indices) for a step reading from `position`."""
        d = self.dist
        return rank_micro_batches(
            self.state.order, position, global_batch, d.rank, d.world_size, self.cfg.train.micro_batch_size
        )

    def _step_batches(self, position: int, global_batch: int) -> list[dict[str, Any]]:
        """This step's micro-batches on the device; the next step's start loading behind it."""
        batches = self.prefetcher.get(self.micro_batches(position, global_batch))
        step = self.counters.step + 1
        if step < self.cfg.train.steps:  # guess the next step: no rollback, no reshuffle (get() checks)
            with contextlib.suppress(IndexError):  # past the dataset: the next step raises it clearly
                self.prefetcher.prefetch(
                    self.micro_batches(position + global_batch, self.cfg.train.global_batch_at(step))
                )
        return [to_device(b, self.dist.device) for b in batches]

    def train_step(self) -> dict[str, Any]:
        c = self.counters
        global_batch = self.cfg.train.global_batch_at(c.step)
        if global_batch != self.engine.train_batch_size():
            self.engine.set_train_batch_size(global_batch)  # ramp: more accumulation, same micro batch
        lr = self.state.schedule.lr_at(c.step)
        batches = self._step_batches(c.consumed_samples, global_batch)
        tokens = global_batch * self.tokens_per_sample
        with self.throughput.measure(tokens):
            out = optimizer_step(self.engine, batches, lr, self.dist.world_size, self.dist.device,
                                 loss_hook=lambda loss: self.faults.corrupt_loss(c.step + 1, loss))  # fmt: skip
        c.step += 1
        c.consumed_samples += global_batch
        if out.applied:
            c.tokens_seen += tokens
        else:
            c.skipped_steps += 1
        return {"loss": out.loss, "lr": lr, "grad_norm": out.grad_norm, "global_batch": global_batch,
                "applied": out.applied}  # fmt: skip

    # ---- evaluation and checkpoints ------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        self.state.last_valid = self.task.evaluation(self.engine, self.dist)
        return self.state.last_valid

    def evaluate_extra(self, step: int) -> dict[str, float]:
        """The task's extra scores (task files during pretraining) when due; logged, not acted on."""
        extra = self.task.extra_evaluation
        if extra is None or (step % extra.interval and step != self.cfg.train.steps):
            return {}
        # ZeRO-1/2: rank 0 holds the whole model and scores alone; the others wait here.
        scores = extra.score(self.engine, self.dist) if extra.all_ranks or self.dist.is_main else {}
        barrier()
        if scores:
            self.metrics.log(step, scores)
            if self.dist.is_main and extra.plot is not None:
                extra.plot(self.run_dir)
        return scores

    def trainer_state(self) -> dict[str, Any]:
        """trainer_state.json: the run state plus what a later load must check against."""
        dropout = self.state.knobs.dropout
        return {
            **self.state.snapshot(),
            "config_hash": self.cfg.hash(),
            "model_shape": self.model_shape,
            "model_config": {**self.model_config, **{f"{k}_dropout": v for k, v in dropout.items()}},
            "world_size": self.dist.world_size,
            "zero_stage": self.cfg.train.zero_stage,
        }

    def save(self) -> Path:
        c = self.counters
        keep = {t for t in (c.best_tag, c.anchor_tag) if t}
        step = c.step
        with self.watchdog.phase("save", step):
            path = ckpt.save_checkpoint(
                self.engine, self.ckpt_dir, step, self.trainer_state(), self.dist, self.cfg.train.keep_last, keep,
                before_publish=lambda: self.faults.in_save(step),
            )  # fmt: skip
        self.metrics.event(step, "checkpoint", path=str(path))
        return path

    def load(self, path: Path, universal: bool = False) -> dict[str, Any]:
        """Restore engine, RNG and the whole run state from a checkpoint."""
        saved = ckpt.load_checkpoint(self.engine, path, self.dist, universal=universal)
        self.state.load_checkpoint_state(saved)
        return saved

    # ---- the loop --------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        if self.metrics is None:
            raise RuntimeError("Trainer.fit needs its metrics logger (build_run opens it)")
        try:
            self.stop_request.install()
            self.watchdog.start()
            self._fit()
            code, reason = 0, "done"
        except RunStopped as stop:
            code, reason = stop.code, str(stop)
            if stop.gave_up:
                self.metrics.event(self.counters.step, "gave_up", label="gave up", reason=reason)
                if self.dist.is_main:
                    atomic_write_text(self.run_dir / GAVE_UP_FILE, f"step {self.counters.step}: {reason}\n")
                self.say(f"gave up: {reason} (see {self.run_dir / GAVE_UP_FILE})")
        finally:
            self.watchdog.stop()
            self.stop_request.uninstall()
            self.prefetcher.close()
        if self.dist.is_main:
            plot_losses(self.run_dir)
        barrier()
        return {**self.summary(), "exit_code": code, "stop_reason": reason}

    def _fit(self) -> None:
        t, c, controller = self.cfg.train, self.counters, self.state.controller
        end = min(t.steps, t.exit_at_step) if t.exit_at_step else t.steps
        if c.step > 0:
            self.metrics.event(c.step, "resume", label="resume")
        if c.step >= end or controller.stopped:
            self.say(f"nothing to do: the run is at step {c.step} and stops at {end} (train.steps={t.steps})")
            return
        if c.step == 0:
            self._evaluate_and_control()
            self.evaluate_extra(0)
        bar = tqdm(total=t.steps, initial=c.step, disable=not (self.dist.is_main and self.cfg.logging.progress),
                   desc=self.cfg.name, unit="step", dynamic_ncols=True)  # fmt: skip
        first = self.counters.step + 1
        while self.counters.step < end:
            self._check_stop_request()
            with self.watchdog.step(self.counters.step + 1):
                stats = self.train_step()
            step = self.counters.step
            self.faults.after_step(step)
            if step == first:  # every rank's peak once the optimizer states exist
                report_memory(f"after step {step}", self.say)
            self._log_step(step, stats, bar, log=step % t.log_interval == 0 or step == end)
            if self._spike_rolled_back(step, stats):
                continue  # from the last good checkpoint, past the data that led to the spike
            self._step_controller(step)
            saved = False
            if step % t.eval_interval == 0 or step == t.steps:  # not at exit_at_step: same decisions
                saved = self._evaluate_and_control()
                if self.counters.step != step:  # the controller rolled back: go on from there
                    continue
            self.evaluate_extra(step)
            if not saved and (step % t.save_interval == 0 or step in (t.steps, end) or controller.stopped):
                self.save()
            if controller.stopped:
                self.say(f"controller stopped the run at step {self.counters.step}")
                break
        bar.close()

    def _log_step(self, step: int, stats: dict[str, Any], bar, log: bool) -> None:
        bar.update(step - bar.n)  # the bar follows the step, rollbacks included
        bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{stats['lr']:.2e}")
        if not stats["applied"]:
            self.metrics.event(
                step, "skip_step", label="skip", loss=stats["loss"], grad_norm=stats["grad_norm"]
            )
        if log:
            numbers = {k: v for k, v in stats.items() if k != "applied"}
            self.metrics.log(step, {**numbers, "tokens": self.counters.tokens_seen, **self.throughput.take(),
                                    "skipped_steps": self.counters.skipped_steps, **engine_settings(self.engine),
                                    **layernorm_norms(self.engine, self.cfg.train.zero_stage)})  # fmt: skip

    def _spike_rolled_back(self, step: int, stats: dict[str, Any]) -> bool:
        reason = self.state.spikes.check(stats["loss"], stats["applied"])
        if reason is None:
            return False
        self.metrics.event(step, "loss_spike", label="spike", reason=reason, loss=stats["loss"])
        if not self.cfg.faults.rollback:
            return False
        interventions.rollback(self, reason, skip_window=True, reshuffle=False, to_anchor=False)
        return True

    def _step_controller(self, step: int) -> None:
        decision = self.state.controller.on_step(step)  # scripted mode acts at given steps
        if decision is not None:
            interventions.apply(self, decision)

    def _evaluate_and_control(self) -> bool:
        """Evaluate; keep the best checkpoint; let the controller act. True if it saved."""
        c, controller = self.counters, self.state.controller
        step = c.step
        with self.watchdog.phase("evaluate", step):
            valid = self.evaluate()
        self.metrics.log(step, {f"valid/{k}/loss": v for k, v in valid.items()})
        self.say(f"step {step}: validation loss " + ", ".join(f"{k} {v:.4f}" for k, v in valid.items()))
        saved = False
        if controller.is_new_best(valid, step) and step > 0:
            c.best_tag = ckpt.tag_for_step(step)
            self.save()
            saved = True
            self.metrics.event(step, "best", metric=controller.best_metric, tag=c.best_tag)
        decision = controller.on_eval(step, c.tokens_seen, valid)
        if decision is not None:
            interventions.apply(self, decision)
        # A new patience window starts here: keep a checkpoint to roll back to if it turns flat.
        c = self.counters  # a rollback replaced them
        if self.cfg.controller.mode == "plateau" and controller.detector.since_step == c.step:
            tag = ckpt.tag_for_step(c.step)
            if tag != c.anchor_tag:
                c.anchor_tag = tag
                if not saved:
                    self.save()
                    saved = True
        return saved

    def _check_stop_request(self) -> None:
        reason = self.stop_request.requested()
        (votes,) = all_reduce_sum([1.0 if reason else 0.0], self.dist.device)
        if not votes:
            return
        step, who = self.counters.step, reason or "another rank"
        self.stop_request.clear()
        self.save()
        if self.dist.is_main:
            (self.run_dir / REQUEUE_FILE).write_text(f"{who} at step {step}\n")
        self.metrics.event(step, "preempted", label="preempted", reason=who)
        self.say(f"stop requested ({reason or 'on another rank'}): checkpoint written, exiting for requeue")
        raise RunStopped(requeue_exit_code(), f"pre-empted: {reason}")

    def summary(self) -> dict[str, Any]:
        c = self.counters
        return {
            "step": c.step,
            "tokens": c.tokens_seen,
            "valid": self.state.last_valid,
            "skipped_steps": c.skipped_steps,
            "rollbacks": c.rollbacks,
            "best_checkpoint": c.best_tag,
            "best_metric": self.state.controller.best_metric,
        }

    def say(self, message: str) -> None:
        """A line for people (rank 0 only), printed above the progress bar."""
        if self.dist.is_main:
            tqdm.write(message)


class _Shape:
    def __init__(self, num_layers: int, hidden_size: int):
        self.num_layers, self.hidden_size = num_layers, hidden_size
