"""One SFT stage through DeepSpeed: data -> model (full or LoRA) -> train -> export -> eval.

The loop, checkpoints, resume and metrics are the pretraining trainer's, set up by the
same `build_run`; the stage hands it its own `TrainingTask` (instruction rows, epochs
over them reshuffled per epoch, padded per micro-batch; the held-out records' loss) and
the recipe's schedule. The stage folder gets, in this order:

    config.yaml, metrics.jsonl, events.jsonl, loss.png, checkpoints/   while training
    config.json + model.safetensors + tokenizer files                  the model (HF format)
    adapter/ (LoRA)                                                    peft adapter + its base
    eval.json, eval.md, sft.json                                       held-out results, template
    COMPLETE                                                           written last
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bloomberg_style.config import ConfigError, LoggingSection, OptimSection, RunConfig, TrainSection
from bloomberg_style.training.distributed import DistInfo, barrier, on_main_rank
from bloomberg_style.training.task import HeldOutLoss, TrainingTask

from .collate import EncodeStats, EpochDataset, build_rows, pad_rows
from .formats import Example, load_examples
from .recipe import Recipe, StageSpec, stage_steps
from .templates import Template

COMPLETE = "COMPLETE"
VALID_NAME = "heldout"


@dataclass
class StageRunConfig(RunConfig):
    """The pretraining run config the trainer reads, plus the stage it was made from."""

    sft: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageData:
    train_rows: list[dict]
    valid_rows: list[dict]
    valid_examples: list[Example]
    train_stats: EncodeStats
    valid_stats: EncodeStats
    train_records: int
    malformed: int
    formats: dict[str, str]


@dataclass
class StageResult:
    stage: str
    out_dir: Path
    complete: bool
    step: int = 0
    report: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0  # non-zero when the trainer was stopped (e.g. pre-empted: requeue)


# ---- data ------------------------------------------------------------------------------


def prepare_stage_data(stage: StageSpec, template: Template, tok, where: str) -> StageData:
    d = stage.data
    examples, report = load_examples(d.train, d.format, d.fields, d.bad_records, where=f"{where}.data.train")
    if d.limit:
        examples = examples[: d.limit]
    rng = random.Random(stage.seed)
    if d.valid:
        valid, vreport = load_examples(
            d.valid, d.format, d.fields, d.bad_records, where=f"{where}.data.valid"
        )
        report.malformed += vreport.malformed
        valid = valid[: d.max_valid_records]
        train = examples
    else:
        if len(examples) < 2:
            raise ConfigError(
                f"{where}.data: {len(examples)} record(s) cannot be split into train and held-out"
            )
        order = list(range(len(examples)))
        rng.shuffle(order)
        n_valid = min(d.max_valid_records, max(1, round(d.valid_fraction * len(examples))), len(examples) - 1)
        valid = [examples[i] for i in sorted(order[:n_valid])]
        train = [examples[i] for i in sorted(order[n_valid:])]
    rng.shuffle(train)  # packing groups random neighbours; epochs reshuffle rows again
    train_rows, train_stats = build_rows(train, template, tok, d.max_length, d.too_long, d.packing)
    valid_rows, valid_stats = build_rows(valid, template, tok, d.max_length, d.too_long, packing=False)
    if not train_rows:
        raise ConfigError(
            f"{where}.data: no training rows left: all {train_stats.examples} records were dropped "
            f"(longest {train_stats.max_example_tokens} tokens, data.max_length={d.max_length}, "
            f"too_long={d.too_long})"
        )
    if not valid_rows:
        raise ConfigError(f"{where}.data: every held-out record was dropped; raise data.max_length")
    return StageData(
        train_rows, valid_rows, valid, train_stats, valid_stats, len(train), report.malformed, report.formats
    )


def stage_task(stage: StageSpec, data: StageData, steps: int, pad_id: int) -> TrainingTask:
    """Instruction rows, epochs over them; rows padded per micro-batch; the held-out loss."""
    collate = functools.partial(pad_rows, pad_id=pad_id)  # rows differ in length
    held_out = HeldOutLoss(
        {VALID_NAME: EpochDataset(data.valid_rows, shuffle=False)},
        {VALID_NAME: 1.0},  # the only held-out set: the best-checkpoint metric is its loss
        collate,
        stage.micro_batch_size,
        stage.eval_samples,
    )
    train = EpochDataset(data.train_rows, length=steps * stage.global_batch_size, seed=stage.seed)
    return TrainingTask(train, collate, held_out, stage.data.max_length)


# ---- run config --------------------------------------------------------------------------


def stage_run_config(recipe: Recipe, stage: StageSpec, steps: int) -> StageRunConfig:
    out = recipe.stage_dir(stage)
    stage_dict = dataclasses.asdict(stage)
    for key in ("exit_at_step", "torch_threads"):  # steer one invocation, not the result
        stage_dict.pop(key)
    cfg = StageRunConfig(
        name=out.name,
        output_dir=str(out.parent),
        optim=OptimSection(
            lr=stage.lr,
            min_lr=stage.min_lr,
            warmup_steps=0,  # the SFT schedule counts warm-up itself
            betas=(stage.betas[0], stage.betas[1]),
            weight_decay=stage.weight_decay,
            grad_clip=stage.grad_clip,
        ),
        train=TrainSection(
            steps=steps,
            micro_batch_size=stage.micro_batch_size,
            global_batch_size=stage.global_batch_size,
            precision=stage.precision,
            zero_stage=stage.zero_stage,
            activation_checkpointing=stage.activation_checkpointing,
            seed=stage.seed,
            log_interval=stage.log_interval,
            eval_interval=stage.eval_interval or steps,
            eval_samples=stage.eval_samples,
            save_interval=stage.save_interval,
            keep_last=stage.keep_last,
            torch_threads=stage.torch_threads,
            exit_at_step=stage.exit_at_step,
        ),
        logging=LoggingSection(**dataclasses.asdict(recipe.logging)),
        sft={"recipe": recipe.name, "stage": stage_dict},
    )
    cfg.data.seq_len = stage.data.max_length  # rows are at most this long (no pretraining domains)
    return cfg


# ---- one stage ---------------------------------------------------------------------------


def run_stage(recipe: Recipe, stage: StageSpec, base: str, dist: DistInfo, log=print) -> StageResult:
    """Train, export and evaluate one stage, starting from the model at `base`."""
    from bloomberg_style.artifacts import copy_tokenizer, load_model, load_tokenizer, tokenizer_dir
    from bloomberg_style.training.build import BuiltModel, build_run

    from .lora import apply_lora, describe_trainable, trainable_parameters
    from .schedule import SFTSchedule

    index = recipe.stages.index(stage)
    where = f"{recipe.source or 'recipe'}: stages[{index}] ({stage.name})"
    if stage.method not in ("full", "lora"):  # built (sft/prompt_tuning.py, quantize.py), not yet wired here
        raise ConfigError(
            f"{where}: method {stage.method} is not wired into the stage trainer yet (issue 15)"
        )
    out = recipe.stage_dir(stage)
    template = recipe.template_for(stage)
    tok_dir = Path(recipe.tokenizer) if recipe.tokenizer else tokenizer_dir(base)
    tok = load_tokenizer(tok_dir)

    data = prepare_stage_data(stage, template, tok, where)
    steps = stage_steps(stage, len(data.train_rows))
    cfg = stage_run_config(recipe, stage, steps)
    cfg.train.grad_accumulation(dist.world_size)  # batch arithmetic checked before the model loads
    trainable = 0

    def build_model(ds_config: dict[str, Any]) -> BuiltModel:
        nonlocal trainable
        model = load_model(base)
        if tok.vocab_size > model.config.vocab_size:
            raise ConfigError(
                f"{where}: tokenizer {tok_dir} has {tok.vocab_size} tokens, the model at {base} only "
                f"{model.config.vocab_size} rows"
            )
        model_config = model.config.to_dict()
        model.set_activation_checkpointing(stage.activation_checkpointing)
        if stage.method == "lora":
            model = apply_lora(model, stage.lora)
        model.train()
        trainable, total = trainable_parameters(model)
        if dist.is_main:
            log(f"stage {stage.name}: {stage.method} fine-tuning from {base}; {describe_trainable(model)}")
            log(
                f"  data: {data.train_records} training records -> {len(data.train_rows)} rows "
                f"(truncated {data.train_stats.truncated}, dropped {data.train_stats.dropped_too_long} too long "
                f"+ {data.train_stats.dropped_no_target} without reply tokens, malformed skipped "
                f"{data.malformed}); {len(data.valid_rows)} held-out; {steps} steps of "
                f"{dist.world_size} rank(s) x {stage.micro_batch_size} x {cfg.train.grad_accumulation(dist.world_size)} "
                f"accumulation = {stage.global_batch_size} rows; ZeRO {stage.zero_stage}, {stage.precision}"
            )
        return BuiltModel(model, model_config, total)

    schedule = SFTSchedule.from_ratio(stage.schedule, stage.lr, stage.min_lr, stage.warmup_ratio, steps)
    run = build_run(
        cfg, dist, build_model, stage_task(stage, data, steps, tok.eod_id), schedule, stage.weight_decay,
        extra_files=lambda folder: copy_tokenizer(tok_dir, folder),
    )  # fmt: skip
    summary = run.fit()
    step, exit_code = run.trainer.counters.step, int(summary.get("exit_code", 0))
    _release(run.engine)
    del run
    gc.collect()
    if step < steps:
        if dist.is_main:
            log(f"stage {stage.name} stopped at step {step} of {steps}; run again to resume")
        return StageResult(stage.name, out, complete=False, step=step, exit_code=exit_code)

    report = on_main_rank(
        lambda: finish_stage(recipe, stage, base, out, tok, tok_dir, template, data, steps, trainable, log),
        lambda e: RuntimeError(f"stage {stage.name}: exporting or evaluating failed: {e}"),
    )
    barrier()
    return StageResult(stage.name, out, complete=True, step=step, report=report or {})


def _release(engine) -> None:
    destroy = getattr(engine, "destroy", None)
    if callable(destroy):
        destroy()


# ---- export and evaluation (rank 0) --------------------------------------------------------


def export_stage_model(stage: StageSpec, base: str, out: Path, tok_dir: Path, eos_id: int) -> Path:
    """Write the stage's model from its final checkpoint (FP32 master weights).

    Full: the trained weights. LoRA: the adapter tensors onto a fresh FP32 base; saved as
    a peft adapter (adapter/) and, with merge, as a merged HF model in `out`.
    """
    from bloomberg_style.artifacts import copy_tokenizer, load_model, save_model
    from bloomberg_style.artifacts.checkpoint import load_checkpoint_model, load_checkpoint_state_dict
    from bloomberg_style.artifacts.layout import find_resume_checkpoint

    from .lora import adapter_state, apply_lora, load_adapter_state, merge, save_adapter

    step_dir = find_resume_checkpoint(out / "checkpoints", log=lambda *_: None)
    if step_dir is None:
        raise FileNotFoundError(f"no complete checkpoint in {out / 'checkpoints'} to export")
    if stage.method == "full":
        return save_model(load_checkpoint_model(step_dir), out, tok_dir, eos_id)
    _, weights = load_checkpoint_state_dict(step_dir)
    base_abs = str(Path(base).resolve())
    peft_model = apply_lora(load_model(base), stage.lora)
    load_adapter_state(peft_model, adapter_state(weights))
    save_adapter(peft_model, out / "adapter", base_abs)
    if stage.lora.merge:
        return save_model(merge(peft_model), out, tok_dir, eos_id)
    save_adapter(peft_model, out, base_abs)
    copy_tokenizer(tok_dir, out)
    return out


def finish_stage(
    recipe: Recipe,
    stage: StageSpec,
    base: str,
    out: Path,
    tok,
    tok_dir: Path,
    template: Template,
    data: StageData,
    steps: int,
    trainable: int,
    log=print,
) -> dict[str, Any]:
    from bloomberg_style.artifacts import load_model
    from bloomberg_style.training.pretrain import validation_summary

    from .evaluate import generate_answers, heldout_loss, score_answers, write_report
    from .generate import SamplingConfig

    t0 = time.perf_counter()
    export_stage_model(stage, base, out, tok_dir, tok.eod_id)
    e = stage.eval
    sampling = SamplingConfig(
        temperature=e.temperature,
        top_k=e.top_k,
        top_p=e.top_p,
        max_new_tokens=e.max_new_tokens,
        seed=stage.seed,
    )
    examples = data.valid_examples[: e.max_records]
    losses = validation_summary(out)
    report: dict[str, Any] = {
        "recipe": recipe.name,
        "stage": stage.name,
        "method": stage.method,
        "base": base,
        "template": template.name,
        "steps": steps,
        "trainable_parameters": trainable,
        "train_records": data.train_records,
        "heldout_records": len(data.valid_examples),
        "malformed_skipped": data.malformed,
        "formats": data.formats,
        "train_rows": data.train_stats.as_dict(),
        "heldout_rows": data.valid_stats.as_dict(),
        "before": {"loss": losses.get("valid_first", {}).get(VALID_NAME)},
        "after": {"loss": losses.get("valid_final", {}).get(VALID_NAME)},
    }
    after_model = load_model(out)
    # The exported FP32 model's own held-out loss (equals the trainer's at fp32; bf16 runs differ slightly).
    report["after"]["loss_exported_fp32"] = heldout_loss(after_model, data.valid_rows, tok.eod_id)
    samples: list[dict[str, str]] = []
    if examples:
        answers = generate_answers(after_model, tok, template, examples, sampling)
        report["after"].update(score_answers(answers, e.bertscore_model, e.bertscore_layer))
        samples = answers[: e.samples]
        if e.compare_base:
            before_model = load_model(base)
            before = generate_answers(before_model, tok, template, examples[: len(answers)], sampling)
            report["before"].update(score_answers(before, e.bertscore_model, e.bertscore_layer))
            for s, b in zip(samples, before):
                s["generated_before"] = b["generated"]
    report["samples"] = samples
    report["eval_seconds"] = round(time.perf_counter() - t0, 1)
    write_report(out, report)
    (out / "sft.json").write_text(
        json.dumps(
            {"recipe": recipe.name, "stage": stage.name, "base": base, "template": template.to_dict()},
            indent=1,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    if not stage.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    (out / COMPLETE).write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n", encoding="utf-8")
    b, a = report["before"], report["after"]
    log(
        f"stage {stage.name} complete: held-out loss {_f(b.get('loss'))} -> {_f(a.get('loss'))}, "
        f"token F1 {_f(b.get('f1'))} -> {_f(a.get('f1'))}; model in {out}"
    )
    return report


def _f(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"
