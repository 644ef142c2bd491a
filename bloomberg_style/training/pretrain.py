"""Pretraining, top to bottom: parse -> validate -> prepare inputs -> build -> train -> close."""

from __future__ import annotations

import functools
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bloomberg_style.config import ConfigError, RunConfig
from bloomberg_style.configlib import packaged
from bloomberg_style.training.distributed import DistInfo, init_distributed, on_main_rank
from bloomberg_style.training.preemption import refuse_if_gave_up

DEMO_CONFIG = packaged("pretrain/demo.yaml")  # shipped as package data


def check_shards_tokenizer(cfg: RunConfig) -> None:
    """Shards that exist must have been encoded with the run's tokenizer (before any collective)."""
    from bloomberg_style.data.build import tokenizer_exists
    from bloomberg_style.data.parts import expand_prefixes
    from bloomberg_style.data.shards import ShardTokenizerMismatch, check_shard_tokenizer

    if not tokenizer_exists(cfg.data.tokenizer):
        return  # trained from the inputs, then the shards are built with it
    for i, d in enumerate(cfg.data.domains):
        for prefix in expand_prefixes([d.prefix, *d.prefixes]):
            try:
                check_shard_tokenizer(prefix, cfg.data.tokenizer)
            except ShardTokenizerMismatch as exc:
                raise ConfigError(f"data.domains[{i}] ({d.name}): {exc}") from None


def prepare_inputs(cfg: RunConfig, dist: DistInfo) -> None:
    """Rank 0 builds missing corpus/tokenizer/shards; every rank then checks it sees them."""
    from bloomberg_style.data.build import check_run_inputs, ensure_run_inputs

    on_main_rank(
        lambda: ensure_run_inputs(cfg.data), lambda e: ConfigError(f"preparing the run's inputs failed: {e}")
    )
    check_run_inputs(cfg.data)


def has_checkpoint(cfg: RunConfig) -> bool:
    from bloomberg_style.training.checkpoint import find_resume_checkpoint

    return find_resume_checkpoint(cfg.run_dir / "checkpoints", log=lambda *_: None) is not None


def build_model_config(cfg: RunConfig, vocab_size: int, init_ref=None):
    """The network: the preset (vocabulary padded to pad_vocab_to), or init_from's shape."""
    from bloomberg_style.model import ModelConfig

    if init_ref is None:
        return ModelConfig.from_run(cfg, vocab_size)
    from bloomberg_style.training.init_from import init_model_config

    return init_model_config(
        init_ref, cfg.model.overrides.given(), vocab_size,
        max_seq_len=cfg.data.seq_len, activation_checkpointing=cfg.train.activation_checkpointing,
    )  # fmt: skip


def train_samples_needed(cfg: RunConfig) -> int:
    """Samples to index: the whole run, plus room for data windows skipped after spikes."""
    t = cfg.train
    largest = max([t.global_batch_size] + [b for _, b in t.batch_ramp])
    spare = (cfg.faults.max_rollbacks + 1) * t.save_interval * largest if cfg.faults.rollback else 0
    return t.samples_before(t.steps) + spare


def pretraining_task(cfg: RunConfig, eod_id: int, vocab_size: int):
    """The domain mixture's rows; one held-out set per domain, weighted as in the mixture."""
    from bloomberg_style.data.mixture import DomainSpec, build_datasets
    from bloomberg_style.training.eval_budget import eval_samples_per_domain
    from bloomberg_style.training.task import HeldOutLoss, TrainingTask, stack_samples

    t = cfg.train
    datasets = build_datasets(
        [DomainSpec(d.name, d.prefix, d.weight, tuple(d.prefixes)) for d in cfg.data.domains],
        seq_len=cfg.data.seq_len,
        seed=t.seed,
        train_samples=train_samples_needed(cfg),
        valid_fraction=cfg.data.valid_fraction,
        valid_seed=cfg.data.valid_seed,  # not t.seed: the held-out documents never move
        eod_id=eod_id,
        vocab_size=vocab_size,
        cache_dir=cfg.data.cache_dir or cfg.run_dir / "index_cache",  # not beside shared shards
        trust_cache=cfg.data.trust_index_cache,
    )
    weights = {d.name: d.weight for d in cfg.data.domains}
    budget = functools.partial(eval_samples_per_domain, cfg)  # capped rows per evaluation (eval_budget.py)
    held_out = HeldOutLoss(datasets.valid, weights, stack_samples, t.micro_batch_size, budget=budget)
    return TrainingTask(datasets.train, stack_samples, held_out, cfg.data.seq_len), datasets


# (cfg, tokenizer) -> the scorer of cfg.eval.tasks, or None. Filled by the caller (cli/pretrain.py
# passes evaluation/in_loop.task_evaluation): training sits below evaluation and cannot import it.
ExtraEvaluationFactory = Callable[[RunConfig, Any], Any]


def run_pretraining(cfg: RunConfig, extra_evaluation: ExtraEvaluationFactory | None = None) -> dict[str, Any]:
    """Train (or resume) the run described by `cfg`; returns a summary (rank 0 has it all)."""
    cfg.validate()
    refuse_if_gave_up(cfg.run_dir)
    if cfg.eval.tasks and extra_evaluation is None:
        raise ConfigError(
            "eval.tasks is set but nothing scores task files here: run `bloomberg-style pretrain` "
            "(or pass run_pretraining(cfg, extra_evaluation=evaluation.in_loop.task_evaluation))"
        )
    from bloomberg_style.data.prepare import check_inline_preparation

    check_inline_preparation(cfg.data, int(os.environ.get("WORLD_SIZE", "1")))  # before any collective
    check_shards_tokenizer(cfg)
    init_ref = None
    if cfg.model.init_from:
        from bloomberg_style.training.init_from import resolve_init_from

        init_ref = resolve_init_from(cfg.model.init_from)
    dist = init_distributed(cfg.train.torch_threads)
    cfg.train.grad_accumulation(dist.world_size)  # batch arithmetic checked before any work
    prepare_inputs(cfg, dist)

    from bloomberg_style.data.shards import load_run_tokenizer
    from bloomberg_style.data.unigram import unigram_baselines
    from bloomberg_style.training import engine_build
    from bloomberg_style.training.build import BuiltModel, build_run
    from bloomberg_style.training.schedule import WarmupCosineSchedule

    tok = load_run_tokenizer(cfg.data.tokenizer)  # ours or a Hugging Face folder's
    model_cfg = build_model_config(cfg, tok.vocab_size, init_ref)
    start_from = init_ref if init_ref is not None and not has_checkpoint(cfg) else None

    def build_model(ds_config: dict[str, Any]) -> BuiltModel:
        model = engine_build.build_model(model_cfg, ds_config)  # partitioned from birth under ZeRO-3
        if start_from is not None:  # a resumed run loads its own checkpoint instead
            from bloomberg_style.training.init_from import load_initial_weights

            load_initial_weights(model, start_from, dist.rank)
        return BuiltModel(model, model_cfg.to_dict(), model.num_parameters())

    def copy_tokenizer(run_dir: Path) -> None:  # the run folder is self-contained for export
        if not (run_dir / "tokenizer").is_dir():
            shutil.copytree(cfg.data.tokenizer, run_dir / "tokenizer")

    t = cfg.train
    task, datasets = pretraining_task(cfg, tok.eod_id, model_cfg.vocab_size)
    if extra_evaluation is not None:
        task.extra_evaluation = extra_evaluation(cfg, tok)
    schedule = WarmupCosineSchedule.from_run(cfg)
    run = build_run(
        cfg, dist, build_model, task, schedule, cfg.optim.weight_decay, extra_files=copy_tokenizer
    )
    num_params = run.num_parameters
    run.trainer.say(
        f"model {cfg.model.preset}: {num_params:,} parameters; {dist.world_size} rank(s) x "
        f"{t.micro_batch_size} x {t.grad_accumulation(dist.world_size, t.global_batch_at(0))} accumulation = "
        f"{t.global_batch_at(0)} sequences x {cfg.data.seq_len} tokens per step; ZeRO {t.zero_stage}, {t.precision}"
    )
    if start_from is not None:
        from bloomberg_style.training.init_from import describe

        run.trainer.say(describe(start_from))
    log_attention_path(
        cfg, run, model_cfg.attention_impl, dist, model_cfg.attention_dropout, model_cfg.head_dim
    )
    summary = run.fit()
    summary["num_parameters"] = num_params
    if dist.is_main:
        summary.update(validation_summary(cfg.run_dir))
        summary["unigram_baseline"] = unigram_baselines(datasets.train, datasets.valid, model_cfg.vocab_size)
        (cfg.run_dir / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        print(format_summary(summary))
    return summary


def log_attention_path(
    cfg: RunConfig, run, impl: str, dist: DistInfo, dropout_p: float = 0.0, head_dim: int = 0
) -> None:
    """Which attention kernel runs (and why `auto` fell back): log line, events.jsonl, wandb config."""
    from bloomberg_style.artifacts.load import torch_dtype
    from bloomberg_style.training import attention_report

    if not dist.is_main:
        return
    dtype = torch_dtype(cfg.train.precision)
    attention = attention_report.attention_path(impl, dist.device, dtype, dropout_p, head_dim)
    run.trainer.say(attention_report.describe(attention))
    run.metrics.event(run.trainer.counters.step, "attention", label=attention["path"], **attention)
    run.metrics.run_facts(attention=attention)


def validation_summary(run_dir: Path) -> dict[str, Any]:
    """First and last validation loss per domain, from metrics.jsonl (survives resumes)."""
    from bloomberg_style.training.metrics import read_jsonl

    records = [r for r in read_jsonl(run_dir / "metrics.jsonl") if any(k.startswith("valid/") for k in r)]
    if not records:
        return {}

    def losses(r: dict) -> dict[str, float]:
        return {k.split("/")[1]: v for k, v in r.items() if k.startswith("valid/") and k.endswith("/loss")}

    return {
        "valid_first": {"step": records[0]["step"], **losses(records[0])},
        "valid_final": {"step": records[-1]["step"], **losses(records[-1])},
    }


def format_summary(summary: dict[str, Any]) -> str:
    first, final = summary.get("valid_first", {}), summary.get("valid_final", {})
    unigram = summary.get("unigram_baseline", {})
    lines = [
        f"validation loss (nats/token)  step {first.get('step')} -> step {final.get('step')}  vs unigram"
    ]
    for domain, base in unigram.items():
        lines.append(
            f"  {domain:<12} {first.get(domain, float('nan')):8.4f} -> {final.get(domain, float('nan')):8.4f}"
            f"   unigram {base:.4f}"
        )
    return "\n".join(lines)
