"""Generation-scored tasks (NER, ConvFinQA): the model writes the answer, greedy, batched.

A generation task file is a task file (fewshot.py) whose header has "type": "generation":

    {"task": "ner", "type": "generation", "prompt": "{text}\\nEntities:", "shots": 20,
     "metric": "entity_f1", "max_new_tokens": 48}
    {"text": "Apple hired Tim Cook", "target": "Apple (ORG); Tim Cook (PER)",
     "entities": [["ORG", "Apple"], ["PER", "Tim Cook"]], "split": "test"}

Header fields: task, type, prompt, metric (METRICS), and optionally shots (default 0),
target_delimiter (" "), separator ("\\n\\n"), max_new_tokens (64), stop ("\\n": the answer
ends at the first newline), description. Examples: target (what a shot shows as the
answer), split, the prompt's fields, and what the metric reads: "entities" for entity_f1,
"answer" (and "table") for convfinqa_em. Shots are drawn as for classification tasks and
the oldest are dropped until the prompt plus max_new_tokens fits the model's context.
"""

from __future__ import annotations

import dataclasses
import json
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bloomberg_style.evaluation.convfinqa_dsl import answer_value, exact_match, normalise
from bloomberg_style.evaluation.entities import entity_f1, parse_entities
from bloomberg_style.evaluation.fewshot import (
    Example,
    ResultDict,
    TaskError,
    read_task_lines,
    sample_shots,
    split_example,
)

METRICS = ("entity_f1", "convfinqa_em")
NEEDS = {"entity_f1": "entities", "convfinqa_em": "answer"}
DEFAULTS: dict[str, Any] = {
    "shots": 0,
    "target_delimiter": " ",
    "separator": "\n\n",
    "max_new_tokens": 64,
    "stop": "\n",
    "description": "",
}


@dataclass
class GenerationTask:
    name: str
    prompt: str
    metric: str
    test: list[Example]  # Example.label holds the target text
    train: list[Example]
    shots: int = 0
    target_delimiter: str = " "
    separator: str = "\n\n"
    max_new_tokens: int = 64
    stop: str = "\n"
    description: str = ""
    source: str = ""

    def render(self, example: Example) -> str:
        return self.prompt.format_map(example.fields)

    def context(self, example: Example, shots: list[Example]) -> str:
        parts = [self.render(s) + self.target_delimiter + s.label for s in shots] + [self.render(example)]
        return self.separator.join(parts) + self.target_delimiter.rstrip()


def is_generation_task(path: str | Path) -> bool:
    """True when the file's first non-empty line is a header with "type": "generation"."""
    if not Path(path).is_file():
        return False  # load_task reports it
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                try:
                    header = json.loads(line)
                except json.JSONDecodeError:
                    return False  # load_task reports it
                return isinstance(header, dict) and header.get("type") == "generation"
    return False


def load_generation_task(path: str | Path) -> GenerationTask:
    path = Path(path)
    records = read_task_lines(path)
    if not records:
        raise TaskError(f"{path}: empty task file")
    n0, header = records[0]
    where = f"{path}:{n0}"
    known = {"task", "type", "prompt", "metric", *DEFAULTS}
    unknown = sorted(set(header) - known)
    if unknown:
        raise TaskError(f"{where}: unknown header field(s) {unknown}; known: {sorted(known)}")
    for key in ("task", "prompt", "metric"):
        if not isinstance(header.get(key), str) or not header[key]:
            raise TaskError(f"{where}: the header needs a string {key!r}")
    h = {**DEFAULTS, **header}
    if h["metric"] not in METRICS:
        raise TaskError(f"{where}: 'metric' must be one of {METRICS}, got {h['metric']!r}")
    for key in ("shots", "max_new_tokens"):
        if isinstance(h[key], bool) or not isinstance(h[key], int) or h[key] < (0 if key == "shots" else 1):
            raise TaskError(
                f"{where}: {key!r} must be an integer >= {0 if key == 'shots' else 1}, got {h[key]!r}"
            )
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(h["prompt"]) if name}
    except ValueError as err:
        raise TaskError(f"{where}: 'prompt' is not a valid template: {err}") from None
    needs = NEEDS[h["metric"]]
    test, train = [], []
    for n, record in records[1:]:
        where = f"{path}:{n}"
        if not isinstance(record.get("target"), str):
            raise TaskError(f"{where}: needs a string 'target'")
        if needs not in record:
            raise TaskError(f"{where}: metric {h['metric']} needs the field {needs!r}")
        split, fields = split_example(record, where, names, "target")
        (train if split == "train" else test).append(Example(fields, record["target"], n))
    if not test:
        raise TaskError(f"{path}: no test examples")
    return GenerationTask(
        name=h["task"], prompt=h["prompt"], metric=h["metric"], test=test, train=train, shots=h["shots"],
        target_delimiter=h["target_delimiter"], separator=h["separator"], max_new_tokens=h["max_new_tokens"],
        stop=h["stop"], description=h["description"], source=str(path),
    )  # fmt: skip


@dataclass
class GenerationResult(ResultDict):
    task: str
    source: str
    shots: int
    seed: int
    items: int
    metric: str
    score: float
    majority: dict[str, Any]  # the one answer most often gold, given to every item
    shots_dropped: int
    truncated: int
    seconds: float
    predictions: list[dict[str, Any]] = field(default_factory=list)


def task_score(task: GenerationTask, examples: list[Example], outputs: list[str]) -> float:
    """The task's metric of the outputs against the examples' gold fields."""
    if task.metric == "entity_f1":
        gold = [[tuple(e) for e in ex.fields["entities"]] for ex in examples]
        return entity_f1(gold, [parse_entities(o) for o in outputs])
    hits = [exact_match(o, ex.fields["answer"], ex.fields.get("table")) for ex, o in zip(examples, outputs)]
    return sum(hits) / len(hits)


def _prompt_ids(task, tokenizer, example, shots, room: int, bos: list[int]) -> tuple[list[int], int, bool]:
    kept = list(shots)
    while True:
        ids = bos + tokenizer.encode(task.context(example, kept))
        if len(ids) <= room or not kept:
            break
        kept = kept[1:]
    cut = len(ids) > room
    return (bos + ids[len(ids) - room + len(bos) :] if cut else ids), len(shots) - len(kept), cut


def score_generation_task(
    model,
    tokenizer,
    task: GenerationTask,
    *,
    shots: int | None = None,
    seed: int = 1234,
    batch_size: int = 8,
    limit: int = 0,
    max_length: int | None = None,
    bos: bool = True,
    indices: list[int] | None = None,
) -> GenerationResult:
    """Greedy answers to the test examples (the first `limit` if > 0), scored by the task's metric.
    `indices` answers only those test examples, with the shots a full run gives them."""
    from bloomberg_style.evaluation.generation import greedy_generate  # torch: imported when scoring

    start = time.perf_counter()
    if limit:
        task = dataclasses.replace(task, test=task.test[:limit])
    k = task.shots if shots is None else shots
    room = (max_length or model.config.max_seq_len) - task.max_new_tokens
    if room < 2:
        raise TaskError(f"{task.source}: max_new_tokens {task.max_new_tokens} leaves no room for a prompt")
    prefix = [tokenizer.eod_id] if bos else []
    chosen = list(range(len(task.test))) if indices is None else list(indices)
    prompts, dropped, truncated = [], 0, 0
    for i in chosen:
        example = task.test[i]
        ids, n_dropped, cut = _prompt_ids(
            task, tokenizer, example, sample_shots(task, i, k, seed), room, prefix
        )
        prompts.append(ids)
        dropped += n_dropped > 0
        truncated += cut

    def stopped(new: list[int]) -> bool:
        return bool(task.stop) and task.stop in tokenizer.decode(new)

    if getattr(model, "agree", None) is None:  # the whole model here: the KV-cache decoder
        from bloomberg_style.model.generate import greedy_generate as cached_greedy

        new_ids = cached_greedy(model, prompts, task.max_new_tokens, stop_ids=(tokenizer.eod_id,),
                                vocab_limit=tokenizer.vocab_size, batch_size=batch_size,
                                stop_when=stopped)  # fmt: skip
    else:  # ZeRO-3 (evaluation/sharded.py): ranks agree on every step's tokens
        new_ids = greedy_generate(
            model, prompts, task.max_new_tokens, stop_ids=(tokenizer.eod_id,), stop_when=stopped,
            vocab_limit=tokenizer.vocab_size, batch_size=batch_size,
        )  # fmt: skip
    outputs = []
    for ids in new_ids:
        text = tokenizer.decode(ids)
        outputs.append(text.split(task.stop, 1)[0].strip() if task.stop else text.strip())
    predictions = []
    for i, output in zip(chosen, outputs):
        example = task.test[i]
        record = {"line": example.line, "gold": example.label, "output": output}
        if task.metric == "convfinqa_em":
            record["value"] = answer_value(output, example.fields.get("table"))
            record["answer"] = example.fields["answer"]
        predictions.append(record)
    return summarise_generation(task, predictions, shots=k, seed=seed, dropped=dropped, truncated=truncated,
                                seconds=time.perf_counter() - start)  # fmt: skip


def summarise_generation(
    task: GenerationTask, predictions: list[dict[str, Any]], *, shots: int, seed: int, dropped: int,
    truncated: int, seconds: float,
) -> GenerationResult:  # fmt: skip
    """The GenerationResult of per-example records (one run's, or merged from ranks by line)."""
    if not predictions:
        raise TaskError(f"{task.source}: no test examples answered")
    by_line = {e.line: e for e in task.test}
    examples = [by_line[p["line"]] for p in predictions]
    outputs = [p["output"] for p in predictions]
    if task.metric == "convfinqa_em":
        baseline_answer = str(Counter(normalise(e.fields["answer"]) for e in examples).most_common(1)[0][0])
    else:
        baseline_answer = Counter(e.label for e in examples).most_common(1)[0][0]
    return GenerationResult(
        task=task.name, source=task.source, shots=shots, seed=seed, items=len(examples), metric=task.metric,
        score=task_score(task, examples, outputs),
        majority={"answer": baseline_answer, "score": task_score(task, examples, [baseline_answer] * len(examples))},
        shots_dropped=dropped, truncated=truncated, seconds=round(seconds, 3), predictions=predictions,
    )  # fmt: skip
