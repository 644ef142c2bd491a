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
from .templates import TOKENIZER_TEMPLATE, Template

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


def is_hf_tokenizer(tok) -> bool:
    """A HF base's tokenizer (hf_base.HFTokenizer), not our NumericUnigramTokenizer."""
    return hasattr(tok, "hf")


def check_stage_fits(stage: StageSpec, tok, template: Template | None, tok_dir: Path, where: str) -> None:
    """What the tokenizer decides about the stage, before any record is encoded."""
    hf = is_hf_tokenizer(tok)
    if stage.method in ("ptuning", "qlora") and not hf:
        raise ConfigError(
            f"{where}: method {stage.method} needs a Hugging Face base (transformers model); "
            "our BLOOM takes method full or lora"
        )
    if template is None and not (hf and tok.chat_template):
        raise ConfigError(
            f"{where}: template: tokenizer, but the tokenizer in {tok_dir} has no chat template "
            "(tokenizer_config.json chat_template); name one of ours (template: NAME)"
        )
    if stage.method == "qlora":
        from bloomberg_style.artifacts.quantize import QLoraUnavailable, check_qlora_supported

        try:
            check_qlora_supported(where)
        except QLoraUnavailable as exc:
            raise ConfigError(str(exc)) from None


def load_stage_base(stage: StageSpec, base: str, trust_remote_code: bool, ds_config: dict | None):
    """The stage's starting model behind our call (our BLOOM, or a HF base as HFCausalLM).

    Under ZeRO-3 the base is built already partitioned. Ours: zero.Init, then filled tensor
    by tensor (build_our_base_partitioned). A HF base: transformers' DeepSpeed integration
    (HfDeepSpeedConfig alive while from_pretrained runs) constructs it inside
    deepspeed.zero.Init and loads each weight into its shards, so no rank ever holds the
    whole model. QLoRA loads the base in 4-bit NF4 and prepares it for k-bit training.
    """
    import torch

    from bloomberg_style.artifacts import load_model
    from bloomberg_style.artifacts.hf_base import HFCausalLM, is_our_bloom, load_hf_base

    if stage.method == "qlora":
        from bloomberg_style.artifacts.quantize import prepare_for_kbit

        hf = load_hf_base(base, torch.bfloat16, trust_remote_code, load_in_4bit=True).model
        return HFCausalLM(prepare_for_kbit(hf, stage.activation_checkpointing))
    hf_folder = (Path(base) / "config.json").is_file() and not is_our_bloom(base)
    if stage.zero_stage == 3 and ds_config is not None and not hf_folder:
        partitioned = build_our_base_partitioned(base, ds_config)
        if partitioned is not None:
            return partitioned
    if stage.zero_stage == 3 and ds_config is not None and hf_folder:
        from transformers.integrations import HfDeepSpeedConfig

        keep = HfDeepSpeedConfig(ds_config)  # transformers holds it weakly: keep it alive
        try:
            return HFCausalLM(load_hf_base(base, torch.float32, trust_remote_code).model)
        finally:
            del keep
    return load_model(base, trust_remote_code=trust_remote_code)


def build_our_base_partitioned(base: str, ds_config: dict):
    """Our BLOOM (HF folder or checkpoint) built inside deepspeed.zero.Init and filled one
    tensor at a time from rank 0 (training/init_from.py): no rank holds the whole base.
    None for an adapter folder (merged whole first, by load_model)."""
    from bloomberg_style.artifacts import resolve
    from bloomberg_style.training.init_from import build_partitioned

    ref = resolve(base)
    return None if ref.kind == "adapter" else build_partitioned(ref, ds_config)


def wrap_for_method(model, stage: StageSpec):
    """Full: as is. LoRA / QLoRA: peft adapters on the frozen base. P-tuning: peft prefixes."""
    from .lora import apply_lora

    if stage.method in ("lora", "qlora"):
        return apply_lora(model, stage.lora)
    if stage.method == "ptuning":
        from .prompt_tuning import apply_prefix_tuning

        model.hf = apply_prefix_tuning(model.hf, stage.ptuning)
    return model


def load_knowledge(stage: StageSpec, where: str):
    """eval.knowledge's knowledge base, read before training (a bad file stops the stage early)."""
    if not stage.eval.knowledge:
        return None
    from .retrieval import KnowledgeBase, KnowledgeError

    try:
        return KnowledgeBase.load(stage.eval.knowledge)
    except (KnowledgeError, OSError) as exc:
        raise ConfigError(f"{where}.eval.knowledge: {exc}") from None


def run_stage(recipe: Recipe, stage: StageSpec, base: str, dist: DistInfo, log=print) -> StageResult:
    """Train, export and evaluate one stage, starting from the model at `base`."""
    from bloomberg_style.artifacts import copy_tokenizer, load_tokenizer, tokenizer_dir
    from bloomberg_style.artifacts.hf_base import HFCausalLM, shape_config
    from bloomberg_style.training.build import BuiltModel, build_run

    from .lora import describe_trainable, trainable_parameters
    from .schedule import SFTSchedule

    index = recipe.stages.index(stage)
    where = f"{recipe.source or 'recipe'}: stages[{index}] ({stage.name})"
    out = recipe.stage_dir(stage)
    template = recipe.template_for(stage)  # None: the tokenizer's own chat template
    tok_dir = Path(recipe.tokenizer) if recipe.tokenizer else tokenizer_dir(base)
    tok = load_tokenizer(tok_dir, recipe.trust_remote_code)
    check_stage_fits(stage, tok, template, tok_dir, where)
    knowledge = load_knowledge(stage, where)

    data = prepare_stage_data(stage, template, tok, where)
    steps = stage_steps(stage, len(data.train_rows))
    cfg = stage_run_config(recipe, stage, steps)
    cfg.train.grad_accumulation(dist.world_size)  # batch arithmetic checked before the model loads
    trainable = 0

    def build_model(ds_config: dict[str, Any]) -> BuiltModel:
        nonlocal trainable  # ds_config: build_run's, so ZeRO-3 builds the base partitioned under it
        model = load_stage_base(stage, base, recipe.trust_remote_code, ds_config)
        if tok.vocab_size > model.config.vocab_size:
            raise ConfigError(
                f"{where}: tokenizer {tok_dir} has {tok.vocab_size} tokens, the model at {base} only "
                f"{model.config.vocab_size} rows"
            )
        hf = isinstance(model, HFCausalLM)
        model_config = shape_config(model.config) if hf else model.config.to_dict()
        if stage.method != "qlora":  # prepare_for_kbit set QLoRA's checkpointing
            model.set_activation_checkpointing(stage.activation_checkpointing)
        try:
            model = wrap_for_method(model, stage)
        except ValueError as exc:  # e.g. a LoRA target the model does not have
            raise ConfigError(f"{where}: {exc}") from None
        model.train()
        trainable, total = trainable_parameters(model)
        if dist.is_main:
            log(f"stage {stage.name}: {stage.method} fine-tuning from {base}; {describe_trainable(model)}")
            if stage.zero_stage == 3:
                built = sum(p.ds_numel for p in model.parameters() if hasattr(p, "ds_id"))
                log(
                    f"  ZeRO-3: {built:,} of {total:,} parameters built partitioned across ranks "
                    "(deepspeed.zero.Init); the rest are partitioned by deepspeed.initialize"
                    if built
                    else "  ZeRO-3: the model was built whole; deepspeed.initialize partitions it"
                )
            log(
                f"  data: {data.train_records} training records -> {len(data.train_rows)} rows "
                f"(truncated {data.train_stats.truncated}, dropped {data.train_stats.dropped_too_long} too long "
                f"+ {data.train_stats.dropped_no_target} without reply tokens, malformed skipped "
                f"{data.malformed}); {len(data.valid_rows)} held-out; {steps} steps of "
                f"{dist.world_size} rank(s) x {stage.micro_batch_size} x {cfg.train.grad_accumulation(dist.world_size)} "
                f"accumulation = {stage.global_batch_size} rows; ZeRO {stage.zero_stage}, {stage.precision}"
            )
        return BuiltModel(model, model_config, total)

    def save_tokenizer(folder: Path) -> None:
        if is_hf_tokenizer(tok):
            tok.save(folder)
        else:
            copy_tokenizer(tok_dir, folder)

    schedule = SFTSchedule.from_ratio(stage.schedule, stage.lr, stage.min_lr, stage.warmup_ratio, steps)
    pad_id = getattr(tok, "pad_id", tok.eod_id)
    run = build_run(
        cfg, dist, build_model, stage_task(stage, data, steps, pad_id), schedule, stage.weight_decay,
        extra_files=save_tokenizer,
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

    context = StageContext(
        recipe, stage, base, out, tok, tok_dir, template, data, steps, trainable, knowledge
    )
    report = on_main_rank(
        lambda: finish_stage(context, log),
        lambda e: RuntimeError(f"stage {stage.name}: exporting or evaluating failed: {e}"),
    )
    barrier()
    return StageResult(stage.name, out, complete=True, step=step, report=report or {})


def _release(engine) -> None:
    destroy = getattr(engine, "destroy", None)
    if callable(destroy):
        destroy()


# ---- export and evaluation (rank 0) --------------------------------------------------------


@dataclass
class StageContext:
    """What a finished stage's export and evaluation need."""

    recipe: Recipe
    stage: StageSpec
    base: str
    out: Path
    tok: Any
    tok_dir: Path
    template: Template | None
    data: StageData
    steps: int
    trainable: int
    knowledge: Any = None  # retrieval.KnowledgeBase for eval.knowledge

    @property
    def trust_remote_code(self) -> bool:
        return self.recipe.trust_remote_code


def _load_trained(model, weights: dict, keep, what: str) -> None:
    """Put the checkpoint tensors that `keep(name)` selects into `model`; all must be there."""
    expected = {k for k in model.state_dict() if keep(k)}
    chosen = {k: v for k, v in weights.items() if k in expected}
    missing = sorted(expected - set(chosen))
    if not expected or missing:
        raise ValueError(f"the checkpoint does not hold the stage's {what}: missing {missing[:3]}")
    model.load_state_dict(chosen, strict=False)


def export_stage_model(ctx: StageContext) -> Path:
    """Write the stage's model from its best (or final, `export`) checkpoint, FP32 master weights.

    Full: the trained weights (our HF BLOOM format, or the HF base's own). LoRA / QLoRA: the
    adapter tensors onto a fresh FP32 (16-bit-loadable) base, saved as a peft adapter
    (adapter/) and, with merge, as a merged HF model in `out`. P-tuning: the prefix encoder as
    a peft adapter (adapter/ and `out`), loaded onto its base for chat and evaluation.
    Returns the checkpoint exported.
    """
    from bloomberg_style.artifacts import copy_tokenizer, load_model, save_model
    from bloomberg_style.artifacts.checkpoint import load_checkpoint_model, load_checkpoint_state_dict
    from bloomberg_style.artifacts.hf_base import save_hf_model
    from bloomberg_style.artifacts.layout import resolve_checkpoint

    from .lora import adapter_state, apply_lora, load_adapter_state, merge, peft_of, save_adapter

    stage, out, tok = ctx.stage, ctx.out, ctx.tok
    step_dir = resolve_checkpoint(out / "checkpoints", prefer_best=stage.export == "best")
    hf = is_hf_tokenizer(tok)

    def save_tokenizer(folder: Path) -> None:
        if hf:
            tok.save(folder)
        else:
            copy_tokenizer(ctx.tok_dir, folder)

    if stage.method == "full" and not hf:
        save_model(load_checkpoint_model(step_dir), out, ctx.tok_dir, tok.eod_id)
        return step_dir
    _, weights = load_checkpoint_state_dict(step_dir)
    base_model = load_model(ctx.base, trust_remote_code=ctx.trust_remote_code)
    base_abs = str(Path(ctx.base).resolve())
    if stage.method == "full":
        _load_trained(base_model, weights, lambda k: True, "weights")
        save_hf_model(base_model.hf, tok, out)
        return step_dir
    if stage.method == "ptuning":
        model = wrap_for_method(base_model, stage)
        _load_trained(model, weights, lambda k: "prompt_encoder" in k, "prefix encoder")
        for folder in (out / "adapter", out):
            save_adapter(model, folder, base_abs)
        save_tokenizer(out)
        return step_dir
    peft_model = apply_lora(base_model, stage.lora)
    load_adapter_state(peft_model, adapter_state(weights))
    save_adapter(peft_model, out / "adapter", base_abs)
    if stage.lora.merge:
        merged = merge(peft_model)
        if hf:
            save_hf_model(getattr(merged, "hf", merged), tok, out)
        else:
            save_model(merged, out, ctx.tok_dir, tok.eod_id)
        return step_dir
    save_adapter(peft_of(peft_model), out, base_abs)
    save_tokenizer(out)
    return step_dir


def finish_stage(ctx: StageContext, log=print) -> dict[str, Any]:
    from bloomberg_style.artifacts import load_model
    from bloomberg_style.artifacts.layout import read_trainer_state
    from bloomberg_style.training.pretrain import validation_summary

    from .evaluate import generate_answers, heldout_loss, knowledge_retriever, score_answers, write_report
    from .generate import SamplingConfig

    recipe, stage, out, tok, data = ctx.recipe, ctx.stage, ctx.out, ctx.tok, ctx.data
    t0 = time.perf_counter()
    exported = export_stage_model(ctx)
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
    exported_state = read_trainer_state(exported)
    template_name = ctx.template.name if ctx.template is not None else TOKENIZER_TEMPLATE
    report: dict[str, Any] = {
        "recipe": recipe.name,
        "stage": stage.name,
        "method": stage.method,
        "base": ctx.base,
        "template": template_name,
        "steps": ctx.steps,
        "trainable_parameters": ctx.trainable,
        "train_records": data.train_records,
        "heldout_records": len(data.valid_examples),
        "malformed_skipped": data.malformed,
        "formats": data.formats,
        "train_rows": data.train_stats.as_dict(),
        "heldout_rows": data.valid_stats.as_dict(),
        # export: best = the checkpoint with the lowest held-out loss; final = the last one
        "exported": {
            "which": stage.export,
            "checkpoint": exported.name,
            "step": exported_state.get("step"),
            "loss": exported_state.get("last_valid", {}).get(VALID_NAME),
        },
        "before": {"loss": losses.get("valid_first", {}).get(VALID_NAME)},
        "after": {"loss": losses.get("valid_final", {}).get(VALID_NAME)},
    }
    pad_id = getattr(tok, "pad_id", tok.eod_id)
    after_model = load_model(out, trust_remote_code=ctx.trust_remote_code)
    # The exported FP32 model's own held-out loss (equals the trainer's at fp32; bf16 runs differ slightly).
    report["after"]["loss_exported_fp32"] = heldout_loss(after_model, data.valid_rows, pad_id)
    samples: list[dict[str, str]] = []
    if examples:
        retriever = knowledge_retriever(ctx.knowledge, after_model, tok, ctx.template)
        answers = generate_answers(after_model, tok, ctx.template, examples, sampling, retriever)
        report["after"].update(score_answers(answers, e.bertscore_model, e.bertscore_layer))
        samples = answers[: e.samples]
        if e.compare_base:
            before_model = load_model(ctx.base, trust_remote_code=ctx.trust_remote_code)
            retriever = knowledge_retriever(ctx.knowledge, before_model, tok, ctx.template)
            before = generate_answers(
                before_model, tok, ctx.template, examples[: len(answers)], sampling, retriever
            )
            report["before"].update(score_answers(before, e.bertscore_model, e.bertscore_layer))
            for s, b in zip(samples, before):
                s["generated_before"] = b["generated"]
    report["samples"] = samples
    report["eval_seconds"] = round(time.perf_counter() - t0, 1)
    write_report(out, report)
    template_spec = (
        ctx.template.to_dict() if ctx.template is not None
        else {"name": TOKENIZER_TEMPLATE, "chat_template": tok.chat_template}
    )  # fmt: skip
    (out / "sft.json").write_text(
        json.dumps(
            {"recipe": recipe.name, "stage": stage.name, "base": ctx.base, "template": template_spec},
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
        f"stage {stage.name} complete: held-out loss {_f(b.get('loss'))} -> {_f(a.get('loss'))} "
        f"(exported {stage.export} checkpoint {exported.name}: {_f(report['exported']['loss'])}), "
        f"token F1 {_f(b.get('f1'))} -> {_f(a.get('f1'))}; model in {out}"
    )
    return report


def _f(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"
