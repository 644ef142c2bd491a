"""`launch/evaluate.py` end to end: check every input, load the model once, score, report.

All inputs (shards, text files, task files) are checked before the model is loaded, so a
typo costs nothing. With neither --data nor --text, a run's own domains (from its
config.yaml) are scored on their validation split, next to any --tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bloomberg_style.evaluation.fewshot import load_task, score_task
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


def run_evaluation(
    checkpoint: str | Path,
    *,
    data: Sequence[str] = (),
    text: Sequence[str] = (),
    tasks: Sequence[str | Path] = (),
    shots: int | None = None,
    seed: int = 1234,
    rule: str | None = None,
    output: str | Path | None = None,
    tokenizer: str | Path | None = None,
    split: str = "valid",
    valid_fraction: float | None = None,
    text_field: str = "text",
    seq_len: int | None = None,
    batch_size: int = 8,
    max_tokens: int = 0,
    limit: int = 0,
    dtype: str = "fp32",
    device: str | None = None,
    log: Callable[[str], Any] = print,
) -> EvalReport:
    """Evaluate one model on shards (--data), raw text (--text) and few-shot task files (--tasks)."""
    from bloomberg_style.corpus import resolve_inputs
    from bloomberg_style.data.shards import shard_exists
    from bloomberg_style.evaluation.loading import is_hf_folder, load_for_evaluation

    # ---- check inputs before loading anything ------------------------------------------
    shards = parse_named(data, "--data")
    for name, prefixes in shards.items():
        if len(prefixes) > 1:
            raise EvaluationError(f"--data {name}: given {len(prefixes)} times; one shard prefix per name")
        if not shard_exists(prefixes[0]):
            raise EvaluationError(
                f"--data {name}={prefixes[0]}: no {prefixes[0]}.bin/.idx (run launch/prepare_data.py)"
            )
    texts = parse_named(text, "--text")
    for paths in texts.values():
        resolve_inputs(paths)  # CorpusError names the bad path
    clash = sorted(set(shards) & set(texts))
    if clash:
        raise EvaluationError(f"domain name(s) {clash} given to both --data and --text")
    task_list = [load_task(p) for p in tasks]
    names = [t.name for t in task_list]
    if len(set(names)) != len(names):
        raise EvaluationError(f"two task files have the same task name: {names}")
    if dtype not in DTYPES:
        raise EvaluationError(f"--dtype must be one of {DTYPES}, got {dtype!r}")
    if split not in ("valid", "all"):
        raise EvaluationError(f"--split must be 'valid' or 'all', got {split!r}")
    if limit < 0 or max_tokens < 0:
        raise EvaluationError(f"--limit and --max-tokens must be >= 0, got {limit} and {max_tokens}")
    if shots is not None and shots < 0:
        raise EvaluationError(f"--shots must be >= 0, got {shots}")
    if valid_fraction is not None and not 0 < valid_fraction < 1:
        raise EvaluationError(f"--valid-fraction must be in (0, 1), got {valid_fraction}")
    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise EvaluationError(f"--checkpoint {checkpoint}: no such file or folder")

    # ---- load ------------------------------------------------------------------------------
    import torch

    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    loaded = load_for_evaluation(checkpoint, tokenizer=tokenizer, dtype=torch_dtype, device=device)
    model, tok = loaded.model, loaded.tokenizer
    run_data = (loaded.run_config or {}).get("data", {})
    if not shards and not texts:
        domains = run_data.get("domains") or []
        if not domains and not task_list:
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
    if (texts or task_list) and tok is None:
        raise EvaluationError(
            f"--text and --tasks need the model's tokenizer: none found with {checkpoint}; pass --tokenizer DIR"
        )
    fraction = valid_fraction if valid_fraction is not None else float(run_data.get("valid_fraction", 0.02))
    seq = seq_len or model.config.max_seq_len
    log(f"model {checkpoint} ({loaded.kind}, step {loaded.step}): {model.num_parameters():,} parameters")

    report = EvalReport(
        model=loaded.describe(),
        settings={
            "split": split,
            "valid_fraction": fraction,
            "seq_len": seq,
            "shots": shots,
            "seed": seed,
            "rule": rule or "best",
            "dtype": dtype,
            "max_tokens": max_tokens,
            "limit": limit,
        },
    )
    for name, (prefix,) in shards.items():
        r = evaluate_shard(
            model,
            prefix,
            name=name,
            tokenizer=tok,
            split=split,
            valid_fraction=fraction,
            seq_len=seq,
            batch_size=batch_size,
            max_tokens=max_tokens,
        )
        log(
            f"  {name:<14} loss {r.loss:.4f}  ppl {r.perplexity:8.2f}  bits/byte {r.bits_per_byte:.4f}  ({r.tokens:,} tokens, {r.seconds:.1f}s)"
        )
        report.domains.append(r)
    for name, paths in texts.items():
        r = evaluate_texts(
            model, tok, paths, name=name, text_field=text_field, seq_len=seq, batch_size=batch_size
        )
        log(
            f"  {name:<14} loss {r.loss:.4f}  ppl {r.perplexity:8.2f}  bits/byte {r.bits_per_byte:.4f}  ({r.tokens:,} tokens, {r.seconds:.1f}s)"
        )
        report.domains.append(r)
    for task in task_list:
        t = score_task(
            model, tok, task, shots=shots, seed=seed, rule=rule, batch_size=batch_size, limit=limit
        )
        log(
            f"  {t.task:<14} {t.shots}-shot, {t.items} items: weighted F1 {t.weighted_f1 * 100:.2f}, "
            f"accuracy {t.accuracy * 100:.2f} ({t.best_rule}; {t.seconds:.1f}s)"
        )
        report.tasks.append(t)

    out = Path(output) if output else None
    if out is None and loaded.run_dir is not None and loaded.checkpoint is not None:
        out = loaded.run_dir / "eval" / loaded.checkpoint.name
    if out is not None:
        paths = report.write(out)
        log(f"wrote {paths['json']} and {paths['markdown']}")
    return report
