"""The training loop: global data positions, batch ramp, evaluation, controllers, faults.

Data position is global: a step with global batch B reads positions [p, p+B) of the
run's data order, rank r its contiguous slice. Nothing about the data state depends on
the number of ranks or on iterator state, so resume is exact and can happen on another
number of ranks. Everything that decides something (schedule, controller, spike monitor,
data order) has its state in `trainer_state.json` of every checkpoint.
"""

from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from bloomberg_style.config import RunConfig
from bloomberg_style.controllers import Decision, LRController, SpikeMonitor
from bloomberg_style.model.model import IGNORE_INDEX
from bloomberg_style.sizing.flops import achieved_tflops, detect_peak_tflops, flops_per_token
from bloomberg_style.training import checkpoint as ckpt
from bloomberg_style.training.data_order import DataOrder
from bloomberg_style.training.distributed import DistInfo, all_reduce_sum, barrier
from bloomberg_style.training.eval_budget import eval_samples_per_domain
from bloomberg_style.training.metrics import MetricsLogger
from bloomberg_style.training.plot import plot_losses
from bloomberg_style.training.preemption import REQUEUE_EXIT_CODE, REQUEUE_FILE, StopRequest
from bloomberg_style.training.schedule import WarmupCosineSchedule
from bloomberg_style.training.watchdog import HangWatchdog, drills_for_this_process

# Fault injection for tests and fire drills: "nan@5,inf_grad@6,spike@9,kill@4,kill_in_save@8" (1-based steps).
FAULTS_ENV = "BLOOMBERG_STYLE_INJECT"


@dataclass
class TrainerState:
    step: int = 0  # optimizer steps done (skipped ones included)
    consumed_samples: int = 0  # global position in the data order
    tokens_seen: int = 0  # tokens actually trained on (skipped windows excluded)
    skipped_steps: int = 0  # non-finite steps DeepSpeed did not apply
    rollbacks: int = 0
    skipped_windows: list[list[int]] = field(default_factory=list)  # [from, to) data positions
    best_tag: str = ""  # checkpoint with the best validation metric
    anchor_tag: str = ""  # checkpoint at the start of the current plateau window (rollback target)


class RunStopped(Exception):
    """Raised to end the loop early; `code` is the process exit code."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code


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
        self.order = DataOrder(len(train_dataset))
        self.controller = LRController(cfg.controller, {d.name: d.weight for d in cfg.data.domains})
        f = cfg.faults
        self.spikes = SpikeMonitor(f.spike_window, f.spike_sigma, f.spike_min_ratio, f.max_consecutive_skips)
        self.dropout = {
            "attention": model_config["attention_dropout"],
            "hidden": model_config["hidden_dropout"],
        }
        self.weight_decay = cfg.optim.weight_decay
        self.run_dir = cfg.run_dir
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.seq_len = cfg.data.seq_len
        shape = _Shape(model_config["num_layers"], model_config["hidden_size"])
        # Model FLOPs (for MFU) and hardware FLOPs (recompute counted, as the paper's 102 TFLOP/s).
        self.flops_per_token = flops_per_token(shape, num_parameters, self.seq_len)
        self.hw_flops_per_token = flops_per_token(
            shape, num_parameters, self.seq_len, recompute=cfg.train.activation_checkpointing
        )
        self.peak_tflops = cfg.train.peak_tflops or (
            detect_peak_tflops() if dist.accelerator == "cuda" else None
        )
        self.last_valid: dict[str, float] = {}
        self.stop_request = StopRequest(self.run_dir)
        self.injected = _parse_faults(drills_for_this_process(os.environ.get(FAULTS_ENV, ""), dist.rank))
        hang_at = {step for step, kind in self.injected.items() if kind == "hang"}
        self.watchdog = HangWatchdog.from_config(cfg.faults, self.run_dir, dist.rank, hang_at)

    # ---- data -------------------------------------------------------------------------
    def micro_batches(self, position: int, global_batch: int) -> list[list[int]]:
        """This rank's micro-batches (dataset indices) for a step reading from `position`."""
        per_rank = global_batch // self.dist.world_size
        mb = self.cfg.train.micro_batch_size
        start = position + self.dist.rank * per_rank
        positions = range(start, start + per_rank)
        return [[self.order.index(p) for p in positions[i : i + mb]] for i in range(0, per_rank, mb)]

    def _collate(self, dataset, indices: list[int]) -> dict[str, torch.Tensor]:
        samples = [dataset[i] for i in indices]
        return {
            key: torch.stack([torch.as_tensor(s[key]) for s in samples]).to(self.dist.device)
            for key in ("tokens", "labels", "loss_mask")
        }

    # ---- one optimizer step -------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        step = self.state.step
        global_batch = self.cfg.train.global_batch_at(step)
        if global_batch != self.engine.train_batch_size():
            self.engine.set_train_batch_size(global_batch)  # ramp: more accumulation, same micro batch
        lr = self.schedule.lr_at(step)
        for group in self.engine.optimizer.param_groups:
            group["lr"] = lr
        self.engine.train()
        losses = []
        micro_batches = self.micro_batches(self.state.consumed_samples, global_batch)
        for i, indices in enumerate(micro_batches):
            # We own the accumulation boundary: a ramp changes the micro-steps per step mid-run.
            self.engine.set_gradient_accumulation_boundary(i == len(micro_batches) - 1)
            batch = self._collate(self.train_dataset, indices)
            loss = self.engine(batch["tokens"], labels=batch["labels"], loss_mask=batch["loss_mask"])
            loss = self._inject(step + 1, loss)
            self.engine.backward(loss)
            losses.append(loss.detach().float().item())
        self.engine.step()
        # DeepSpeed skips the update when the gradient norm is not finite (NaN/inf loss included).
        applied = bool(self.engine.was_step_applied())
        total, count, applied_all = all_reduce_sum(
            [sum(losses), len(losses), float(applied)], self.dist.device
        )
        grad_norm = self.engine.get_global_grad_norm()
        self.state.step += 1
        self.state.consumed_samples += global_batch
        if applied_all == self.dist.world_size:
            self.state.tokens_seen += global_batch * self.seq_len
        else:
            self.state.skipped_steps += 1
        return {
            "loss": total / count,
            "lr": lr,
            "grad_norm": float(grad_norm) if grad_norm is not None else math.nan,
            "global_batch": global_batch,
            "applied": applied_all == self.dist.world_size,
        }

    def _inject(self, step: int, loss: torch.Tensor) -> torch.Tensor:
        """Fire drills fire once per process (a spike's data is skipped after the rollback)."""
        kind = (
            self.injected.pop(step, None) if self.injected.get(step) in ("nan", "spike", "inf_grad") else None
        )
        if kind == "nan":
            return loss * float("nan")
        if kind == "inf_grad":  # a finite loss whose backward is not: every gradient inf/NaN
            return _InfGradient.apply(loss)
        if kind == "spike":
            return loss * 30.0
        return loss

    def engine_settings(self) -> dict[str, float]:
        """LR, dropout and weight decay as the engine holds them (not as we meant to set them)."""
        group = self.engine.optimizer.param_groups[0]
        block = self.engine.module.transformer.h[0]
        return {
            "engine/lr": group["lr"],
            "engine/weight_decay": group["weight_decay"],
            "engine/attention_dropout": block.self_attention.attention_dropout.p,
            "engine/hidden_dropout": block.hidden_dropout.p,
        }

    def layernorm_norms(self) -> dict[str, float]:
        """The paper's stability signals: weight norms of the embedding LN and layer-1 input LN."""
        module = self.engine.module
        weights = {
            "ln_norm/embedding": module.transformer.word_embeddings_layernorm.weight,
            "ln_norm/layer1_input": module.transformer.h[0].input_layernorm.weight,
        }
        if self.cfg.train.zero_stage == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(weights.values())):
                return {k: w.detach().float().norm().item() for k, w in weights.items()}
        return {k: w.detach().float().norm().item() for k, w in weights.items()}

    # ---- evaluation ------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean loss per validation token, per domain, over the split (capped: eval_budget.py)."""
        self.engine.eval()
        results = {}
        mb = self.cfg.train.micro_batch_size
        for name, dataset in self.valid_datasets.items():
            n = eval_samples_per_domain(self.cfg, len(dataset), len(self.valid_datasets))
            mine = list(range(self.dist.rank, n, self.dist.world_size))
            loss_sum, tokens = 0.0, 0.0
            # Every rank runs the same number of forward passes (ZeRO-3 gathers collectively).
            passes = math.ceil(math.ceil(n / self.dist.world_size) / mb)
            for p in range(passes):
                indices = mine[p * mb : (p + 1) * mb]
                batch = self._collate(dataset, indices or [0])
                loss = self.engine(batch["tokens"], labels=batch["labels"], loss_mask=batch["loss_mask"])
                if indices:
                    scored = ((batch["labels"] != IGNORE_INDEX) & (batch["loss_mask"] > 0)).sum().item()
                    loss_sum += loss.float().item() * scored
                    tokens += scored
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
            "data_order": self.order.state_dict(),
            "controller": self.controller.state_dict(),
            "spikes": self.spikes.state_dict(),
            "dropout": self.dropout,
            "weight_decay": self.weight_decay,
            "config_hash": self.cfg.hash(),
            "model_shape": self.model_shape,
            "model_config": {**self.model_config, **{f"{k}_dropout": v for k, v in self.dropout.items()}},
            "world_size": self.dist.world_size,
            "zero_stage": self.cfg.train.zero_stage,
            "last_valid": self.last_valid,
        }

    def save(self) -> Path:
        keep = {t for t in (self.state.best_tag, self.state.anchor_tag) if t}
        step = self.state.step
        with self.watchdog.phase("save", step):
            path = ckpt.save_checkpoint(
                self.engine, self.ckpt_dir, step, self.trainer_state(), self.dist, self.cfg.train.keep_last, keep,
                before_publish=lambda: _maybe_die_in_save(self.injected, step),
            )  # fmt: skip
        self.metrics.event(self.state.step, "checkpoint", path=str(path))
        return path

    def load(self, path: Path, universal: bool = False) -> dict[str, Any]:
        """Restore engine, RNG and every piece of trainer state from a checkpoint."""
        state = ckpt.load_checkpoint(self.engine, path, self.dist, universal=universal)
        self.state = TrainerState(**{k: state[k] for k in asdict(TrainerState()) if k in state})
        self.schedule.load_state_dict(state["schedule"])
        self.order.load_state_dict(state.get("data_order", {}))
        self.controller.load_state_dict(state["controller"])
        self.spikes.load_state_dict(state["spikes"])
        self._set_dropout(**state["dropout"])
        self._set_weight_decay(state["weight_decay"])
        self.last_valid = state.get("last_valid", {})
        return state

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
        universal = ckpt.needs_reshard(path, self.dist.world_size, self.cfg.train.zero_stage)
        if universal:
            self._log(
                f"resharding {path.name}: written on {saved.get('world_size')} rank(s) with ZeRO "
                f"{saved.get('zero_stage')}, loading on {self.dist.world_size} with ZeRO {self.cfg.train.zero_stage}"
            )
            self.load(path, universal=True)
        else:
            # A checkpoint whose files are damaged falls back to the previous complete one.
            older = [p for p in reversed(ckpt.complete_checkpoints(self.ckpt_dir)) if p.name < path.name]
            for candidate in [path, *older]:
                error = None
                try:
                    self.load(candidate)
                except Exception as exc:  # every rank must agree before going on
                    error = f"{type(exc).__name__}: {exc}"
                (failed,) = all_reduce_sum([1.0 if error else 0.0], self.dist.device)
                if not failed:
                    path = candidate
                    break
                self._log(
                    f"checkpoint {candidate} could not be loaded ({error or 'on another rank'}); falling back"
                )
            else:
                raise RuntimeError(f"no checkpoint in {self.ckpt_dir} could be loaded")
        self._log(f"resumed from {path} at step {self.state.step} ({self.state.tokens_seen:,} tokens)")
        return True

    # ---- interventions -----------------------------------------------------------------
    def _set_dropout(self, attention: float | None = None, hidden: float | None = None) -> None:
        self.engine.module.set_dropout(attention=attention, hidden=hidden)
        if attention is not None:
            self.dropout["attention"] = attention
        if hidden is not None:
            self.dropout["hidden"] = hidden

    def _set_weight_decay(self, value: float) -> None:
        for group in self.engine.optimizer.param_groups:
            if group["weight_decay"] > 0:
                group["weight_decay"] = value
        self.weight_decay = value

    def rollback(self, reason: str, skip_window: bool, reshuffle: bool, to_anchor: bool) -> None:
        """Back to a checkpoint: the last good one (spike) or the plateau's start (controller)."""
        if self.state.rollbacks >= self.cfg.faults.max_rollbacks and skip_window:
            raise RunStopped(1, f"{reason}; {self.state.rollbacks} rollbacks already, giving up")
        anchor = self.state.anchor_tag
        target = self.ckpt_dir / anchor if to_anchor and anchor else None
        target = target or ckpt.find_resume_checkpoint(self.ckpt_dir, log=self._log)
        if target is None:
            self._log(f"{reason}: no checkpoint to roll back to; going on")
            return
        position, rollbacks = self.state.consumed_samples, self.state.rollbacks + 1
        windows, best = self.state.skipped_windows, self.state.best_tag
        controller, order = self.controller.state_dict(), self.order.state_dict()
        # Interventions made since that checkpoint (LR drops, dropout, decay) outlive the rollback.
        schedule, dropout, decay = self.schedule.state_dict(), dict(self.dropout), self.weight_decay
        from_step = self.state.step
        self.load(target)
        self.schedule.load_state_dict(schedule)
        self._set_dropout(**dropout)
        self._set_weight_decay(decay)
        self.state.rollbacks = rollbacks
        self.state.skipped_windows = windows
        self.state.best_tag = best  # the best checkpoint so far stays the best, whichever branch
        if to_anchor:  # the controller's progress and the data order survive the rollback
            self.controller.load_state_dict(controller)
            self.order.load_state_dict(order)
            self.controller.detector.reset(self._clock(), self.state.step)
            self.state.anchor_tag = target.name
        if skip_window:  # jump over the data that led to the spike
            self.state.skipped_windows.append([self.state.consumed_samples, position])
            self.state.consumed_samples = position
        if reshuffle:
            self.order.reshuffle_from(self.state.consumed_samples, self.cfg.train.seed + 1000 * rollbacks)
        self.spikes.reset()
        self.metrics.event(
            from_step, "rollback", label="rollback", reason=reason, from_step=from_step, to_step=self.state.step,
            to_checkpoint=target.name, data_position=self.state.consumed_samples, reshuffled=reshuffle,
        )  # fmt: skip
        self._log(f"rollback at step {from_step} -> {target.name}: {reason}")

    def apply(self, decision: Decision) -> None:
        """Carry out a controller decision and record it with the numbers behind it."""
        action = decision.action
        if action is not None:
            if action.rollback:
                self.rollback(
                    f"controller: {decision.reason}", skip_window=False, reshuffle=True, to_anchor=True
                )
            if action.lr_factor != 1.0:
                before = self.schedule.peak_lr
                self.schedule.scale(action.lr_factor)
                decision.numbers.update(peak_lr_before=before, peak_lr_after=self.schedule.peak_lr)
            if action.attention_dropout is not None or action.hidden_dropout is not None:
                self._set_dropout(action.attention_dropout, action.hidden_dropout)
                decision.numbers.update(dropout=dict(self.dropout))
            if action.weight_decay is not None:
                self._set_weight_decay(action.weight_decay)
                decision.numbers.update(weight_decay=action.weight_decay)
        kind = "stop" if decision.stop and action is None else "lr_drop"
        self.metrics.event(decision.step, kind, **decision.event())
        self._log(f"controller at step {decision.step}: {decision.event()['label']} ({decision.reason})")

    # ---- the loop --------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        try:
            self.stop_request.install()
            self.watchdog.start()
            self._fit()
            code, reason = 0, "done"
        except RunStopped as stop:
            code, reason = stop.code, str(stop)
        finally:
            self.watchdog.stop()
            self.stop_request.uninstall()
        if self.dist.is_main:
            plot_losses(self.run_dir)
        barrier()
        return {**self.summary(), "exit_code": code, "stop_reason": reason}

    def _fit(self) -> None:
        t = self.cfg.train
        start_step = self.state.step
        if start_step > 0:
            self.metrics.event(start_step, "resume", label="resume")
        end = min(t.steps, t.exit_at_step) if t.exit_at_step else t.steps
        if start_step >= end or self.controller.stopped:
            self._log(
                f"nothing to do: the run is at step {start_step} and stops at {end} (train.steps={t.steps})"
            )
            return
        if start_step == 0:
            self._evaluate_and_control()
        bar = tqdm(total=t.steps, initial=start_step, disable=not (self.dist.is_main and self.cfg.logging.progress),
                   desc=self.cfg.name, unit="step", dynamic_ncols=True)  # fmt: skip
        window_tokens, window_start = 0, time.perf_counter()
        while self.state.step < end:
            self._check_stop_request()
            with self.watchdog.step(self.state.step + 1):
                stats = self.train_step()
            step = self.state.step
            _maybe_die_after_step(self.injected, step)
            window_tokens += stats["global_batch"] * self.seq_len
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{stats['lr']:.2e}")
            if not stats["applied"]:
                self.metrics.event(
                    step, "skip_step", label="skip", loss=stats["loss"], grad_norm=stats["grad_norm"]
                )
            if step % t.log_interval == 0 or step == end:
                elapsed = time.perf_counter() - window_start
                tflops = achieved_tflops(
                    self.hw_flops_per_token, window_tokens, elapsed, self.dist.world_size
                )
                model_tflops = achieved_tflops(
                    self.flops_per_token, window_tokens, elapsed, self.dist.world_size
                )
                extra = {"mfu": model_tflops / self.peak_tflops} if self.peak_tflops else {}
                extra.update(self.engine_settings())
                self.metrics.log(step, {**{k: v for k, v in stats.items() if k != "applied"},
                                        "tokens": self.state.tokens_seen, "tokens_per_s": window_tokens / elapsed,
                                        "tflops_per_device": tflops, "skipped_steps": self.state.skipped_steps,
                                        **extra, **self.layernorm_norms()})  # fmt: skip
                window_tokens, window_start = 0, time.perf_counter()
            reason = self.spikes.check(stats["loss"], stats["applied"])
            if reason is not None:
                self.metrics.event(step, "loss_spike", label="spike", reason=reason, loss=stats["loss"])
                if self.cfg.faults.rollback:
                    self.rollback(reason, skip_window=True, reshuffle=False, to_anchor=False)
                    bar.n = self.state.step
                    continue
            decision = self.controller.on_step(step)
            if decision is not None:
                self.apply(decision)
            saved = False
            if step % t.eval_interval == 0 or step == t.steps:  # not at exit_at_step: same decisions
                saved = self._evaluate_and_control()
                window_start = time.perf_counter()
                if self.state.step != step:  # the controller rolled back: go on from there
                    bar.n = self.state.step
                    continue
            if not saved and (
                step % t.save_interval == 0 or step in (t.steps, end) or self.controller.stopped
            ):
                self.save()
                window_start = time.perf_counter()
            if self.controller.stopped:
                self._log(f"controller stopped the run at step {self.state.step}")
                break
        bar.close()

    def _evaluate_and_control(self) -> bool:
        """Evaluate; keep the best checkpoint; let the controller act. True if it saved."""
        step = self.state.step
        with self.watchdog.phase("evaluate", step):
            valid = self.evaluate()
        self.metrics.log(step, {f"valid/{k}/loss": v for k, v in valid.items()})
        self._log(f"step {step}: validation loss " + ", ".join(f"{k} {v:.4f}" for k, v in valid.items()))
        saved = False
        if self.controller.is_new_best(valid, step) and step > 0:
            self.state.best_tag = ckpt.tag_for_step(step)
            self.save()
            saved = True
            self.metrics.event(step, "best", metric=self.controller.best_metric, tag=self.state.best_tag)
        decision = self.controller.on_eval(step, self.state.tokens_seen, valid)
        if decision is not None:
            self.apply(decision)
        # A new patience window starts here: keep a checkpoint to roll back to if it turns flat.
        detector = self.controller.detector
        if self.cfg.controller.mode == "plateau" and detector.since_step == self.state.step:
            tag = ckpt.tag_for_step(self.state.step)
            if tag != self.state.anchor_tag:
                self.state.anchor_tag = tag
                if not saved:
                    self.save()
                    saved = True
        return saved

    def _clock(self) -> int:
        return self.state.step if self.cfg.controller.patience_unit == "steps" else self.state.tokens_seen

    def _check_stop_request(self) -> None:
        reason = self.stop_request.requested()
        (votes,) = all_reduce_sum([1.0 if reason else 0.0], self.dist.device)
        if votes:
            self.stop_request.clear()
            self.save()
            if self.dist.is_main:
                (self.run_dir / REQUEUE_FILE).write_text(
                    f"{reason or 'another rank'} at step {self.state.step}\n"
                )
            self.metrics.event(
                self.state.step, "preempted", label="preempted", reason=reason or "another rank"
            )
            self._log(
                f"stop requested ({reason or 'on another rank'}): checkpoint written, exiting for requeue"
            )
            raise RunStopped(REQUEUE_EXIT_CODE, f"pre-empted: {reason}")

    def summary(self) -> dict[str, Any]:
        return {
            "step": self.state.step,
            "tokens": self.state.tokens_seen,
            "valid": self.last_valid,
            "skipped_steps": self.state.skipped_steps,
            "rollbacks": self.state.rollbacks,
            "best_checkpoint": self.state.best_tag,
            "best_metric": self.controller.best_metric,
        }

    def _log(self, message: str) -> None:
        if self.dist.is_main:
            tqdm.write(message)


@dataclass
class _Shape:
    num_layers: int
    hidden_size: int


class _InfGradient(torch.autograd.Function):
    """Fire drill: the identity forward, an infinite gradient backward (overflow, finite loss)."""

    @staticmethod
    def forward(ctx, loss: torch.Tensor) -> torch.Tensor:
        return loss.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad * float("inf")


def _parse_faults(spec: str) -> dict[int, str]:
    faults = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        kind, _, step = item.partition("@")
        if kind not in ("nan", "inf_grad", "spike", "kill", "kill_in_save", "hang") or not step.isdigit():
            raise ValueError(
                f"{FAULTS_ENV}: cannot read {item!r}; expected nan@, inf_grad@, spike@, kill@ or kill_in_save@STEP"
            )
        faults[int(step)] = kind
    return faults


def _maybe_die_after_step(faults: dict[int, str], step: int) -> None:
    """Fire drill: every rank SIGKILLs itself right after optimizer step `step` (the job dying)."""
    if faults.get(step) == "kill":
        os.kill(os.getpid(), signal.SIGKILL)


def _maybe_die_in_save(faults: dict[int, str], step: int) -> None:
    """Fire drill: every rank SIGKILLs itself while the checkpoint is being written."""
    if faults.get(step) == "kill_in_save":
        os.kill(os.getpid(), signal.SIGKILL)
