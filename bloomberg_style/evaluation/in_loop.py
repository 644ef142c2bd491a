"""Task scores during pretraining: the trainer's evaluate step scores task files every
`eval.task_interval` steps and logs them as `task/NAME` in metrics.jsonl (and wandb);
task_scores.png (next to loss.png) draws them against steps.

The trainer cannot import this package (training sits below evaluation), so the seam
runs the other way: `task_evaluation(cfg, tokenizer)` builds a training.task.ExtraEvaluation
and cli/pretrain.py hands this function to run_pretraining, which attaches it to the
pretraining task. The trainer then calls it every `eval.task_interval` steps (and at
step 0 and the last step) and logs `{"task/fpb": 0.61, "task/ner": 0.12, ...}`.

Under ZeRO-1/2 every rank holds the whole model, so rank 0 alone scores; under
ZeRO-3 every rank scores the same examples (each forward gathers the shards) and rank 0 logs.
The model is put in eval mode and back in train mode after; no gradients are kept.
Each task's score is its headline number: weighted F1 (best of the three rules, or the
task's own metric) for classification, entity F1 / exact match for generation tasks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bloomberg_style.evaluation.fewshot import TaskError, load_task
from bloomberg_style.evaluation.gen_tasks import is_generation_task, load_generation_task
from bloomberg_style.training.task import ExtraEvaluation

_CACHE: dict[str, Any] = {}


def _task(path: str):
    if path not in _CACHE:  # parsed once per process; a long run re-reads nothing
        _CACHE[path] = load_generation_task(path) if is_generation_task(path) else load_task(path)
    return _CACHE[path]


def check_task_files(paths: Sequence[str]) -> None:
    """Load every file now (TaskError names the file and line), so a typo fails before training."""
    names = [_task(str(p)).name for p in paths]
    if len(set(names)) != len(names):
        raise TaskError(f"eval.tasks: two task files have the same task name: {names}")


def score_tasks_in_loop(
    model,
    tokenizer,
    task_paths: Sequence[str | Path],
    *,
    limit: int = 0,
    shots: int | None = None,
    seed: int = 1234,
    batch_size: int = 8,
    rule: str | None = "calibrated",
) -> dict[str, float]:
    """{"task/NAME": score} for each task file (the first `limit` test examples if > 0).

    rule defaults to "calibrated", fixed in advance: picking the best rule per evaluation
    would make the curve jump between rules rather than show learning.
    """
    from bloomberg_style.evaluation.fewshot import score_task
    from bloomberg_style.evaluation.gen_tasks import GenerationTask, score_generation_task

    was_training = model.training
    scores: dict[str, float] = {}
    try:
        for path in task_paths:
            task = _task(str(path))
            if isinstance(task, GenerationTask):
                g = score_generation_task(model, tokenizer, task, shots=shots, seed=seed, batch_size=batch_size,
                                          limit=limit)  # fmt: skip
                scores[f"task/{g.task}"] = g.score
            else:
                t = score_task(model, tokenizer, task, shots=shots, seed=seed, rule=rule, batch_size=batch_size,
                               limit=limit)  # fmt: skip
                scores[f"task/{t.task}"] = t.accuracy if t.metric == "accuracy" else t.weighted_f1
    finally:
        model.train(was_training)
    return scores


def plot_task_scores(metrics_path: str | Path, out: str | Path) -> Path | None:
    """Draw every `task/NAME` series of a metrics.jsonl against steps; None if there is none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float]]] = {}
    path = Path(metrics_path)
    if not path.is_file():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash; the others still plot
        for key, value in record.items():
            if key.startswith("task/") and isinstance(value, (int, float)):
                series.setdefault(key[5:], []).append((int(record["step"]), float(value)))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(9, 5))
    for name, points in sorted(series.items()):
        ax.plot(*zip(*sorted(points)), marker="o", ms=3, lw=1.5, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("task score (weighted F1 / entity F1 / exact match)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def task_evaluation(cfg, tokenizer) -> ExtraEvaluation | None:
    """The ExtraEvaluation that scores `cfg.eval.tasks` in the loop, or None if none are listed."""
    e = cfg.eval
    if not e.tasks:
        return None
    check_task_files(e.tasks)

    def score(engine, dist) -> dict[str, float]:
        return score_tasks_in_loop(engine.module, tokenizer, e.tasks, limit=e.task_limit, shots=e.task_shots,
                                   seed=cfg.train.seed)  # fmt: skip

    def plot(run_dir: Path) -> None:
        plot_task_scores(run_dir / "metrics.jsonl", run_dir / "task_scores.png")

    return ExtraEvaluation(e.task_interval, score, all_ranks=cfg.train.zero_stage == 3, plot=plot)
