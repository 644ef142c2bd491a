"""`bloomberg-style evaluate` end to end: check every input, load the model once, score, report.

All inputs (shards, text files, task files) are checked before the model is loaded, so a
typo costs nothing. With neither --data nor --text, a run's own domains (from its
config.yaml) are scored on their validation split, next to any --tasks. The options are
one dataclass, `EvalOptions`, whose fields are also the command's flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bloomberg_style.config import MAX_SEQ_LEN, DataSection  # the cap a run's data.seq_len has
from bloomberg_style.evaluation.fewshot import load_task, score_task
from bloomberg_style.evaluation.gen_tasks import (
    GenerationTask,
    is_generation_task,
    load_generation_task,
    score_generation_task,
)
from bloomberg_style.evaluation.lm_loss import evaluate_shard, evaluate_texts
from bloomberg_style.evaluation.report import EvalReport

DTYPES = ("fp32", "bf16")


class EvaluationError(ValueError):
    """Bad evaluation input (names the argument and value)."""


def parse_named(items: Sequence[str], flag: str) -> dict[str, list[str]]:
    """["fin=shards/fin", "web=a.jsonl", "web=b.jsonl"] -> {"fin": [...], "web": [a, b]}, in order."""
    named: dict[str, list[str]] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise EvaluationError(
                f"{flag} {item!r}: expected NAME=PATH, e.g. {flag} financial=data/shards/fin"
            )
        named.setdefault(name, []).append(path)
    return named


@dataclass
class EvalOptions:
    """What to evaluate and how; each field is a flag of `bloomberg-style evaluate`."""

    checkpoint: str = ""  # run folder, checkpoint folder or HF BLOOM folder
    data: list[str] = field(default_factory=list)  # NAME=PREFIX token shards
    text: list[str] = field(default_factory=list)  # NAME=PATH raw documents (repeat NAME to join)
    tasks: list[str] = field(default_factory=list)  # few-shot task files (.jsonl)
    shots: int | None = None  # shots per test example; None: each task's own
    seed: int = 1234
    rule: str | None = None  # fix the scoring rule; None: best of three
    output: str | None = None  # folder for results.json / results.md
    tokenizer: str | None = None  # default: the run's or the HF folder's
    split: str = "valid"  # "valid" | "all"
    valid_fraction: float | None = None  # default: the run's data.valid_fraction
    valid_seed: int | None = None  # default: the run's data.valid_seed
    text_field: str = "text"
    seq_len: int | None = None  # default: the model's context
    batch_size: int = 8
    max_tokens: int = 0  # per shard; 0 = all
    limit: int = 0  # first N test examples per task; 0 = all
    dtype: str = "fp32"
    device: str | None = None
    shard_weights: bool = False  # ZeRO-3 inference: each rank holds 1/N of the weights (sharded.py)


@dataclass
class _Inputs:
    shards: dict[str, list[str]]
    texts: dict[str, list[str]]
    tasks: list[Any]


def check_inputs(o: EvalOptions) -> _Inputs:
    """Every input checked before the model loads; EvaluationError names the flag and value."""
    from bloomberg_style.corpus import resolve_inputs
    from bloomberg_style.data.shards import shard_exists

    shards = parse_named(o.data, "--data")
    for name, prefixes in shards.items():
        if len(prefixes) > 1:
            raise EvaluationError(f"--data {name}: given {len(prefixes)} times; one shard prefix per name")
        if not shard_exists(prefixes[0]):
            raise EvaluationError(
                f"--data {name}={prefixes[0]}: no {prefixes[0]}.bin/.idx (run launch/prepare_data.py)"
            )
    texts = parse_named(o.text, "--text")
    for paths in texts.values():
        resolve_inputs(paths)  # CorpusError names the bad path
    clash = sorted(set(shards) & set(texts))
    if clash:
        raise EvaluationError(f"domain name(s) {clash} given to both --data and --text")
    task_list = [load_generation_task(p) if is_generation_task(p) else load_task(p) for p in o.tasks]
    names = [t.name for t in task_list]
    if len(set(names)) != len(names):
        raise EvaluationError(f"two task files have the same task name: {names}")
    if o.dtype not in DTYPES:
        raise EvaluationError(f"--dtype must be one of {DTYPES}, got {o.dtype!r}")
    if o.split not in ("valid", "all"):
        raise EvaluationError(f"--split must be 'valid' or 'all', got {o.split!r}")
    if o.seq_len is not None and not 2 <= o.seq_len <= MAX_SEQ_LEN:
        raise EvaluationError(
            f"--seq-len must be in [2, {MAX_SEQ_LEN}] (omit it for the model's context), got {o.seq_len}"
        )
    if o.batch_size < 1:
        raise EvaluationError(f"--batch-size must be >= 1, got {o.batch_size}")
    if o.limit < 0 or o.max_tokens < 0:
        raise EvaluationError(f"--limit and --max-tokens must be >= 0, got {o.limit} and {o.max_tokens}")
    if o.shots is not None and o.shots < 0:
        raise EvaluationError(f"--shots must be >= 0, got {o.shots}")
    if o.valid_fraction is not None and not 0 < o.valid_fraction < 1:
        raise EvaluationError(f"--valid-fraction must be in (0, 1), got {o.valid_fraction}")
    if o.valid_seed is not None and o.valid_seed < 0:
        raise EvaluationError(f"--valid-seed must be >= 0, got {o.valid_seed}")
    if not Path(o.checkpoint).exists():
        raise EvaluationError(f"--checkpoint {o.checkpoint}: no such file or folder")
    if o.shard_weights:
        from bloomberg_style.evaluation.sharded import problem_with

        if o.device is not None:
            raise EvaluationError(
                f"--device {o.device} with --shard-weights: each rank's partition lives on its DeepSpeed "
                "accelerator (cuda:LOCAL_RANK, or the CPU with DS_ACCELERATOR=cpu); drop --device"
            )
        problem = problem_with(o.checkpoint)
        if problem:
            raise EvaluationError(problem)
    return _Inputs(shards, texts, task_list)


def _run_domains(loaded: Any, checkpoint: Path, inputs: _Inputs) -> dict[str, list[str]]:
    """With neither --data nor --text: the run's own domains, whose shards must be visible here."""
    from bloomberg_style.data.shards import shard_exists
    from bloomberg_style.evaluation.loading import is_hf_folder

    domains = (loaded.run_config or {}).get("data", {}).get("domains") or []
    if not domains and not inputs.tasks:
        where = "a Hugging Face folder" if is_hf_folder(checkpoint) else "this checkpoint's run"
        raise EvaluationError(
            f"nothing to evaluate: give --data, --text or --tasks ({where} names no domains)"
        )
    shards = {d["name"]: [d["prefix"]] for d in domains}
    missing = [f"{n}={p[0]}" for n, p in shards.items() if not shard_exists(p[0])]
    if missing:
        raise EvaluationError(
            f"the run's shards are not visible from {Path.cwd()}: {missing}; run from the folder the run "
            "was launched from, or pass --data NAME=PREFIX"
        )
    return shards


def held_out_split(o: EvalOptions, run_config: dict[str, Any] | None) -> tuple[float, int]:
    """(valid_fraction, valid_seed) of --split valid: the flags, else the run's data section, else defaults.

    A config.yaml from before data.valid_seed has none: the default, which a resume of that run
    trains with too, so evaluation and training keep holding out the same documents.
    """
    run_data = (run_config or {}).get("data") or {}
    fraction = o.valid_fraction if o.valid_fraction is not None else run_data.get("valid_fraction")
    seed = o.valid_seed if o.valid_seed is not None else run_data.get("valid_seed")
    return (
        float(DataSection.valid_fraction if fraction is None else fraction),
        int(DataSection.valid_seed if seed is None else seed),
    )


def _log_domain(log: Callable[[str], Any], name: str, r: Any) -> None:
    log(
        f"  {name:<14} loss {r.loss:.4f}  ppl {r.perplexity:8.2f}  bits/byte {r.bits_per_byte:.4f}  "
        f"({r.tokens:,} tokens, {r.seconds:.1f}s)"
    )


def evaluate(o: EvalOptions, log: Callable[[str], Any] = print) -> EvalReport:
    """Evaluate one model on shards (--data), raw text (--text) and few-shot task files (--tasks)."""
    from bloomberg_style.artifacts.load import TORCH_DTYPES
    from bloomberg_style.evaluation.loading import load_for_evaluation
    from bloomberg_style.evaluation.parallel import init_from_env, local_device, score_parallel

    inputs, checkpoint = check_inputs(o), Path(o.checkpoint)
    if o.shard_weights:  # a process group (of one without a launcher) and DeepSpeed's communication
        from bloomberg_style.training.distributed import init_distributed

        started = init_distributed()
        rank, world = started.rank, started.world_size
    else:
        rank, world = init_from_env()  # > 1 under torchrun / deepspeed: tasks are split over ranks
    # ZeRO-3: every forward is a collective, so every rank scores every example (no split).
    split = world > 1 and not o.shard_weights
    if rank:
        log = lambda message: None  # noqa: E731 (rank 0 speaks for all)
    partition = None
    if o.shard_weights:
        from bloomberg_style.evaluation.sharded import describe_partition, load_sharded, partition_report

        engine: dict[str, Any] = {}  # kept alive while scoring (its ZeRO-3 hooks)

        def build(ref: Any) -> Any:
            model, engine["engine"], engine["config"] = load_sharded(ref, o.dtype)
            return model

        loaded = load_for_evaluation(checkpoint, tokenizer=o.tokenizer, build=build)
        partition = partition_report(loaded.model, engine["config"])  # every rank: one all_gather
    else:
        device = o.device or local_device()
        loaded = load_for_evaluation(
            checkpoint, tokenizer=o.tokenizer, dtype=TORCH_DTYPES[o.dtype], device=device
        )
    model, tok = loaded.model, loaded.tokenizer
    if not inputs.shards and not inputs.texts:
        inputs.shards = _run_domains(loaded, checkpoint, inputs)
    if (inputs.texts or inputs.tasks) and tok is None:
        raise EvaluationError(
            f"--text and --tasks need the model's tokenizer: none found with {checkpoint}; pass --tokenizer DIR"
        )
    fraction, valid_seed = held_out_split(o, loaded.run_config)
    seq = o.seq_len or model.config.max_seq_len
    log(f"model {checkpoint} ({loaded.kind}, step {loaded.step}): {model.num_parameters():,} parameters")
    if partition is not None:
        log(describe_partition(partition))

    settings = {"split": o.split, "valid_fraction": fraction, "valid_seed": valid_seed, "seq_len": seq,
                "shots": o.shots, "seed": o.seed, "rule": o.rule or "best", "dtype": o.dtype,
                "max_tokens": o.max_tokens, "limit": o.limit}  # fmt: skip
    report = EvalReport(model=loaded.describe(), settings=settings)
    for name, (prefix,) in inputs.shards.items():
        r = evaluate_shard(model, prefix, name=name, tokenizer=tok, split=o.split, valid_fraction=fraction,
                           valid_seed=valid_seed, seq_len=seq, batch_size=o.batch_size,
                           max_tokens=o.max_tokens)  # fmt: skip
        _log_domain(log, name, r)
        report.domains.append(r)
    for name, paths in inputs.texts.items():
        r = evaluate_texts(model, tok, paths, name=name, text_field=o.text_field, seq_len=seq,
                           batch_size=o.batch_size)  # fmt: skip
        _log_domain(log, name, r)
        report.domains.append(r)
    for task in inputs.tasks:
        if isinstance(task, GenerationTask):
            if split:
                g = score_parallel(model, tok, task, rank, world, shots=o.shots, seed=o.seed,
                                   batch_size=o.batch_size, limit=o.limit)  # fmt: skip
            else:
                g = score_generation_task(model, tok, task, shots=o.shots, seed=o.seed, batch_size=o.batch_size,
                                          limit=o.limit)  # fmt: skip
            log(f"  {g.task:<14} {g.shots}-shot, {g.items} items: {g.metric} {g.score * 100:.2f} "
                f"(majority {g.majority['score'] * 100:.2f}; {g.seconds:.1f}s)")  # fmt: skip
            report.generation.append(g)
            continue
        if split:
            t = score_parallel(model, tok, task, rank, world, shots=o.shots, seed=o.seed, rule=o.rule,
                               batch_size=o.batch_size, limit=o.limit)  # fmt: skip
        else:
            t = score_task(model, tok, task, shots=o.shots, seed=o.seed, rule=o.rule, batch_size=o.batch_size,
                           limit=o.limit)  # fmt: skip
        log(
            f"  {t.task:<14} {t.shots}-shot, {t.items} items: weighted F1 {t.weighted_f1 * 100:.2f}, "
            f"accuracy {t.accuracy * 100:.2f} ({t.best_rule}; {t.seconds:.1f}s)"
        )
        report.tasks.append(t)

    settings["ranks"] = world
    if partition is not None:
        settings["shard_weights"] = partition
    if rank:
        return report  # rank 0 writes
    out = Path(o.output) if o.output else None
    if out is None and loaded.run_dir is not None and loaded.checkpoint is not None:
        out = loaded.run_dir / "eval" / loaded.checkpoint.name
    if out is not None:
        paths = report.write(out)
        log(f"wrote {paths['json']} and {paths['markdown']}")
    return report


def run_evaluation(
    checkpoint: str | Path, *, log: Callable[[str], Any] = print, **options: Any
) -> EvalReport:
    """`evaluate(EvalOptions(checkpoint, **options))`: the keyword form, e.g. for notebooks."""
    return evaluate(EvalOptions(checkpoint=str(checkpoint), **options), log=log)
