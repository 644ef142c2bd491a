"""Pretraining, top to bottom: parse -> validate -> prepare inputs -> build -> train -> close."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bloomberg_style.config import ConfigError, RunConfig
from bloomberg_style.configlib import packaged
from bloomberg_style.training.distributed import DistInfo, barrier, broadcast_object, init_distributed

DEMO_CONFIG = packaged("pretrain/demo.yaml")  # shipped as package data


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def padded_vocab(vocab_size: int, multiple: int) -> int:
    return -(-vocab_size // multiple) * multiple


def prepare_inputs(cfg: RunConfig, dist: DistInfo) -> None:
    """Rank 0 builds missing corpus/tokenizer/shards; every rank then checks it sees them."""
    from bloomberg_style.data.build import check_run_inputs, ensure_run_inputs

    error = None
    if dist.is_main:
        try:
            ensure_run_inputs(cfg.data)
        except Exception as exc:  # every rank must learn of it, or they wait forever
            error = f"{type(exc).__name__}: {exc}"
    error = broadcast_object(error)
    if error:
        raise ConfigError(f"preparing the run's inputs failed: {error}")
    check_run_inputs(cfg.data)


def build_model_config(cfg: RunConfig, vocab_size: int):
    from bloomberg_style.model import ModelConfig

    overrides = dict(cfg.model.overrides)
    for key in ("vocab_size", "max_seq_len", "activation_checkpointing"):
        if key in overrides:
            raise ConfigError(f"model.overrides.{key} is set by the run (tokenizer / data.seq_len / train.*)")
    try:
        return ModelConfig.preset(
            cfg.model.preset,
            **overrides,
            vocab_size=padded_vocab(vocab_size, cfg.model.pad_vocab_to),
            max_seq_len=cfg.data.seq_len,
            activation_checkpointing=cfg.train.activation_checkpointing,
        )
    except ValueError as exc:
        raise ConfigError(f"model: {exc}") from exc


def prepare_reshard(cfg: RunConfig, dist: DistInfo) -> bool:
    """If the checkpoint to resume was written on another rank count or ZeRO stage,
    convert it to DeepSpeed's universal format (rank 0, once); True if so."""
    from bloomberg_style.training import checkpoint as ckpt

    path = ckpt.find_resume_checkpoint(cfg.run_dir / "checkpoints", log=lambda *_: None)
    if path is None or not ckpt.needs_reshard(path, dist.world_size, cfg.train.zero_stage):
        return False
    error = None
    if dist.is_main:
        try:
            ckpt.convert_to_universal(path)
        except Exception as exc:
            error = str(exc)
    error = broadcast_object(error)
    if error:
        raise RuntimeError(error)
    return True


def train_samples_needed(cfg: RunConfig) -> int:
    """Samples to index: the whole run, plus room for data windows skipped after spikes."""
    t = cfg.train
    largest = max([t.global_batch_size] + [b for _, b in t.batch_ramp])
    spare = (cfg.faults.max_rollbacks + 1) * t.save_interval * largest if cfg.faults.rollback else 0
    return t.samples_before(t.steps) + spare


def run_pretraining(cfg: RunConfig) -> dict[str, Any]:
    """Train (or resume) the run described by `cfg`; returns a summary (rank 0 has it all)."""
    cfg.validate()
    from bloomberg_style.data.prepare import check_inline_preparation

    check_inline_preparation(cfg.data, int(os.environ.get("WORLD_SIZE", "1")))  # before any collective
    dist = init_distributed(cfg.train.torch_threads)
    cfg.train.grad_accumulation(dist.world_size)  # batch arithmetic checked before any work
    prepare_inputs(cfg, dist)

    import deepspeed

    from bloomberg_style.data.mixture import DomainSpec, build_datasets
    from bloomberg_style.data.unigram import unigram_baselines
    from bloomberg_style.model import BloomForCausalLM, param_groups
    from bloomberg_style.training.deepspeed_config import build_deepspeed_config
    from bloomberg_style.training.metrics import MetricsLogger
    from bloomberg_style.training.schedule import WarmupCosineSchedule
    from bloomberg_style.training.trainer import Trainer
    from tokenizer import NumericUnigramTokenizer

    run_dir = cfg.run_dir
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
        if not (run_dir / "tokenizer").is_dir():  # the run folder is self-contained for export
            shutil.copytree(cfg.data.tokenizer, run_dir / "tokenizer")
    barrier()

    tok = NumericUnigramTokenizer.load(cfg.data.tokenizer)
    model_cfg = build_model_config(cfg, tok.vocab_size)
    set_seed(cfg.train.seed)
    model = BloomForCausalLM(model_cfg)
    # Lets DeepSpeed's ds_to_universal convert our checkpoints for a new rank count / ZeRO stage.
    model.universal_checkpoint_info = {"universal_checkpoint_version": 0.4}
    num_params = model.num_parameters()

    t = cfg.train
    datasets = build_datasets(
        [DomainSpec(d.name, d.prefix, d.weight, tuple(d.prefixes)) for d in cfg.data.domains],
        seq_len=cfg.data.seq_len,
        seed=t.seed,
        train_samples=train_samples_needed(cfg),
        valid_fraction=cfg.data.valid_fraction,
        eod_id=tok.eod_id,
        vocab_size=model_cfg.vocab_size,
        cache_dir=cfg.data.cache_dir or run_dir / "index_cache",  # not beside shared shards
        trust_cache=cfg.data.trust_index_cache,
    )

    ds_config = build_deepspeed_config(cfg, dist.world_size, dist.accelerator)
    if prepare_reshard(cfg, dist):
        ds_config["checkpoint"] = {**ds_config.get("checkpoint", {}), "load_universal": True}
    engine, _, _, _ = deepspeed.initialize(
        model=model, model_parameters=param_groups(model, cfg.optim.weight_decay), config=ds_config
    )
    schedule = WarmupCosineSchedule(
        peak_lr=cfg.optim.lr,
        min_lr=cfg.optim.min_lr,
        warmup_steps=cfg.optim.warmup_steps,
        decay_steps=cfg.optim.decay_steps or max(1, t.steps - cfg.optim.warmup_steps),
    )
    trainer = Trainer(
        cfg, dist, engine, datasets.train, datasets.valid, schedule, num_params, model_cfg.to_dict()
    )
    trainer.resume()
    # Opened once the resume step is known: lines logged after the checkpoint are redone.
    metrics = trainer.metrics = MetricsLogger(
        cfg, run_dir, enabled=dist.is_main, resume_step=trainer.state.step
    )
    if dist.is_main:
        trainer._log(
            f"model {cfg.model.preset}: {num_params:,} parameters; {dist.world_size} rank(s) x "
            f"{t.micro_batch_size} x {t.grad_accumulation(dist.world_size, t.global_batch_at(0))} accumulation = "
            f"{t.global_batch_at(0)} sequences "
            f"x {cfg.data.seq_len} tokens per step; ZeRO {t.zero_stage}, {t.precision}"
        )
        from bloomberg_style.training import attention_report

        dtype = torch.bfloat16 if t.precision == "bf16" else torch.float32
        attention = attention_report.attention_path(model_cfg.attention_impl, dist.device, dtype)
        trainer._log(attention_report.describe(attention))
        metrics.event(trainer.state.step, "attention", label=attention["path"], **attention)
    try:
        summary = trainer.fit()
    finally:
        metrics.close()
    summary["num_parameters"] = num_params
    if dist.is_main:
        summary.update(validation_summary(run_dir))
        summary["unigram_baseline"] = unigram_baselines(datasets.train, datasets.valid, model_cfg.vocab_size)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        print(format_summary(summary))
    return summary


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
