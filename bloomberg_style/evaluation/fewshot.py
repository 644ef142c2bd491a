"""Few-shot classification by likelihood, the way BloombergGPT scored FPB, FiQA SA and Headline.

A task file is JSONL. The first line describes the task, every other line is one example:

    {"task": "fpb-demo", "prompt": "{text}\\nQuestion: what is the sentiment?\\nAnswer:",
     "labels": {"positive": "positive", "negative": "negative", "neutral": "neutral"}, "shots": 5}
    {"text": "Shares of Quorix rose 4.1% ...", "label": "positive", "split": "train"}
    {"text": "Velmar cut its outlook ...", "label": "negative", "split": "test"}

Header fields: task, prompt (a str.format template over the example's fields), labels
(label -> the word(s) the model should say for it, the "verbalizer"), and optionally
shots (default 5), target_delimiter (between the prompt and the answer, default " "),
separator (between shots, default "\\n\\n"), calibration_prompt (default "Answer:"),
metric ("weighted_f1" or "accuracy", the one that picks the best rule), description.
Examples: label, split ("train": the pool shots are drawn from; "test", the default:
scored), and every field the prompt names.

For each test example, k shots are drawn from the train pool (or, without one, from the
other test examples) with a generator seeded by (seed, task, example index), so a seed
reproduces every prompt. The context is the shots with their answers, then the example's
prompt; each label's answer is scored as a continuation of it. Three rules turn the
log-likelihoods into a prediction, as the paper tried them:

    plain        log p(answer | context)
    calibrated   log p(answer | context) - log p(answer | calibration_prompt)
                 (the label's prior after a content-free "Answer:" is divided out;
                 Brown et al. 2020, section 2.4)
    normalized   log p(answer | context) / number of answer tokens

Accuracy and weighted F1 are reported for every rule and the best rule (by the task's
metric) is the task's score, as the paper reports the best of the three. That choice is
made on the scored examples themselves, so it flatters the model a little; pass
rule="plain" (or another) to fix the rule in advance.

Tokenization. The answer's tokens are the tokens that encode(context + answer) has
beyond its longest common prefix with encode(context). With the paper's tokenizer a
space after punctuation joins the punctuation (": " is one piece), so "Answer: positive"
tokenizes as "Answer", ": ", "positive": the context ends with the delimiter and the
answer is exactly "positive". Every sequence starts with <|endoftext|> (bos=True), the
way every training document follows one.
"""

from __future__ import annotations

import dataclasses
import json
import random
import string
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bloomberg_style.evaluation.metrics import accuracy, f1_per_label, weighted_f1

RULES = ("plain", "calibrated", "normalized")
METRICS = ("weighted_f1", "accuracy")
HEADER_DEFAULTS: dict[str, Any] = {
    "shots": 5,
    "target_delimiter": " ",
    "separator": "\n\n",
    "calibration_prompt": "Answer:",
    "metric": "weighted_f1",
    "description": "",
}
HEADER_REQUIRED = ("task", "prompt", "labels")


class TaskError(ValueError):
    """A task file that cannot be used; the message names the file, line and field."""


@dataclass
class Example:
    fields: dict[str, Any]  # what the prompt is formatted with
    label: str
    line: int  # 1-based line in the task file


@dataclass
class Task:
    name: str
    prompt: str
    labels: dict[str, str]  # label -> verbalizer
    test: list[Example]
    train: list[Example]
    shots: int = 5
    target_delimiter: str = " "
    separator: str = "\n\n"
    calibration_prompt: str = "Answer:"
    metric: str = "weighted_f1"
    description: str = ""
    source: str = ""

    def render(self, example: Example) -> str:
        return self.prompt.format_map(example.fields)

    def demonstration(self, example: Example) -> str:
        """A shot: the prompt followed by its answer."""
        return self.render(example) + self.target_delimiter + self.labels[example.label]

    def context(self, example: Example, shots: Sequence[Example]) -> str:
        """Shots, then this example's prompt and the delimiter its answer follows."""
        parts = [self.demonstration(s) for s in shots] + [self.render(example)]
        return self.separator.join(parts) + self.target_delimiter


def read_task_lines(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a task file (any kind); TaskError names file:line."""
    if not path.is_file():
        raise TaskError(f"task file not found: {path}")
    records: list[tuple[int, dict]] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise TaskError(f"{path}:{number}: not valid JSON: {err.msg}") from None
            if not isinstance(record, dict):
                raise TaskError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            records.append((number, record))
    return records


def split_example(record: dict, where: str, placeholders: set[str], answer: str) -> tuple[str, dict]:
    """An example line's split and its prompt fields (everything but `answer` and split),
    checked to hold every placeholder of the prompt as a string."""
    split = record.get("split", "test")
    if split not in ("train", "test"):
        raise TaskError(f"{where}: split must be 'train' or 'test', got {split!r}")
    fields = {k: v for k, v in record.items() if k not in (answer, "split")}
    for name in placeholders:
        if not isinstance(fields.get(name), str):
            raise TaskError(f"{where}: the prompt uses {{{name}}} but this example has no string {name!r}")
    return split, fields


def load_task(path: str | Path) -> Task:
    """Read and check a task file (format in the module docstring)."""
    path = Path(path)
    records = read_task_lines(path)
    if not records or "task" not in records[0][1]:
        raise TaskError(f"{path}:1: the first line must be the task header with a 'task' field")
    header_line, header = records[0]
    where = f"{path}:{header_line}"
    unknown = sorted(set(header) - set(HEADER_REQUIRED) - set(HEADER_DEFAULTS))
    if unknown:
        raise TaskError(
            f"{where}: unknown header field(s) {unknown}; known: {[*HEADER_REQUIRED, *HEADER_DEFAULTS]}"
        )
    for key in HEADER_REQUIRED:
        if key not in header:
            raise TaskError(f"{where}: the header needs {key!r}")
    h = {**HEADER_DEFAULTS, **header}
    if not isinstance(h["task"], str) or not h["task"].strip():
        raise TaskError(f"{where}: 'task' must be a non-empty name")
    labels = h["labels"]
    if not isinstance(labels, dict) or len(labels) < 2:
        raise TaskError(f"{where}: 'labels' must map at least two labels to their answer words")
    for label, word in labels.items():
        if not isinstance(word, str) or not word:
            raise TaskError(f"{where}: labels[{label!r}] must be a non-empty string, got {word!r}")
    if len(set(labels.values())) != len(labels):
        raise TaskError(f"{where}: two labels share an answer word: {labels}")
    if h["metric"] not in METRICS:
        raise TaskError(f"{where}: 'metric' must be one of {METRICS}, got {h['metric']!r}")
    if isinstance(h["shots"], bool) or not isinstance(h["shots"], int) or h["shots"] < 0:
        raise TaskError(f"{where}: 'shots' must be an integer >= 0, got {h['shots']!r}")
    for key in ("prompt", "target_delimiter", "separator", "calibration_prompt", "description"):
        if not isinstance(h[key], str):
            raise TaskError(f"{where}: {key!r} must be a string, got {h[key]!r}")
    try:
        placeholders = {name for _, name, _, _ in string.Formatter().parse(h["prompt"]) if name is not None}
    except ValueError as err:
        raise TaskError(f"{where}: 'prompt' is not a valid template: {err}") from None
    if not placeholders or "" in placeholders or any(not p.isidentifier() for p in placeholders):
        raise TaskError(
            f"{where}: 'prompt' must name the example fields it uses, like {{text}}; got {h['prompt']!r}"
        )
    if not h["calibration_prompt"]:
        raise TaskError(f"{where}: 'calibration_prompt' must not be empty")

    test, train = [], []
    for number, record in records[1:]:
        where = f"{path}:{number}"
        if "task" in record:
            raise TaskError(f"{where}: a second task header; one task per file")
        label = record.get("label")
        if label not in labels:
            raise TaskError(f"{where}: label {label!r} is not one of {list(labels)}")
        split, fields = split_example(record, where, placeholders, "label")
        (train if split == "train" else test).append(Example(fields, label, number))
    if not test:
        raise TaskError(f"{path}: no test examples (lines with split 'test' or no split)")
    return Task(
        name=h["task"],
        prompt=h["prompt"],
        labels=dict(labels),
        test=test,
        train=train,
        shots=h["shots"],
        target_delimiter=h["target_delimiter"],
        separator=h["separator"],
        calibration_prompt=h["calibration_prompt"],
        metric=h["metric"],
        description=h["description"],
        source=str(path),
    )


def sample_shots(task: Task, index: int, k: int, seed: int) -> list[Example]:
    """k shots for test example `index`, drawn without replacement by a (seed, task, index) generator."""
    pool = task.train or [e for i, e in enumerate(task.test) if i != index]
    rng = random.Random(f"{seed}:{task.name}:{index}")  # str seeds hash stably (SHA-512)
    return rng.sample(pool, min(k, len(pool)))


def split_continuation(tokenizer, context: str, answer: str) -> tuple[list[int], int]:
    """(tokens of context + answer, index of the first answer token): the longest common prefix cut."""
    whole = tokenizer.encode(context + answer)
    ctx = tokenizer.encode(context)
    n = 0
    while n < min(len(ctx), len(whole)) and ctx[n] == whole[n]:
        n += 1
    if n == len(whole):
        raise TaskError(f"answer {answer!r} adds no tokens after {context[-40:]!r}")
    return whole, n


class ResultDict:
    """to_dict of a task result (a dataclass with `predictions`): per-item predictions on request."""

    def to_dict(self, with_predictions: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_predictions:
            d.pop("predictions")
        return d


@dataclass
class TaskResult(ResultDict):
    task: str
    source: str
    shots: int
    seed: int
    items: int
    labels: list[str]
    metric: str
    best_rule: str
    accuracy: float  # of the best rule
    weighted_f1: float  # of the best rule
    rules: dict[str, dict[str, float]]  # rule -> {"accuracy", "weighted_f1"}
    majority: dict[str, Any]  # always answering the most frequent gold label
    shots_dropped: int  # examples that got fewer shots so the context fits
    truncated: int  # examples whose context was cut on the left even with no shots
    seconds: float
    predictions: list[dict[str, Any]] = field(default_factory=list)


def rule_scores(item: Sequence[tuple[float, int]], prior: Sequence[float]) -> dict[str, list[float]]:
    """Each rule's score of every label, from (log p(answer | context), answer tokens) and the
    content-free log p(answer | calibration prompt) of each label."""
    return {
        "plain": [lp for lp, _ in item],
        "calibrated": [lp - p for (lp, _), p in zip(item, prior)],
        "normalized": [lp / n for lp, n in item],
    }


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value; ties go to the first label (label order is the file's)."""
    return max(range(len(values)), key=lambda j: (values[j], -j))


def _fit(
    task: Task, tokenizer, example: Example, shots: list[Example], max_len: int, bos: list[int]
) -> tuple[list[tuple[list[int], int]], int, bool]:
    """Score requests for each label (one per label), dropping the oldest shots until they fit."""
    words = list(task.labels.values())
    kept = list(shots)
    while True:
        context = task.context(example, kept)
        requests = []
        for word in words:
            tokens, start = split_continuation(tokenizer, context, word)
            requests.append((bos + tokens, len(bos) + start))
        longest = max(len(t) for t, _ in requests)
        if longest <= max_len or not kept:
            break
        kept = kept[1:]
    truncated = False
    if longest > max_len:  # even with no shots: keep the last max_len tokens
        cut_requests = []
        for tokens, start in requests:
            cut = max(0, len(tokens) - max_len)
            if start - cut < 1:
                raise TaskError(
                    f"{task.source}:{example.line}: the answer alone is longer than {max_len} tokens"
                )
            cut_requests.append((tokens[cut:], start - cut))
        requests, truncated = cut_requests, True
    return requests, len(shots) - len(kept), truncated


def score_task(
    model,
    tokenizer,
    task: Task,
    *,
    shots: int | None = None,
    seed: int = 1234,
    rule: str | None = None,
    max_length: int | None = None,
    batch_size: int = 8,
    bos: bool = True,
    limit: int = 0,
    indices: Sequence[int] | None = None,
) -> TaskResult:
    """Score the test examples of `task` (the first `limit` if > 0) under the three rules;
    the best rule (or `rule`) is the result. `indices` scores only those test examples, with
    the shots a full run gives them (one rank's share in data-parallel evaluation)."""
    if rule is not None and rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if limit:
        task = dataclasses.replace(task, test=task.test[:limit])
    start_time = time.perf_counter()
    k = task.shots if shots is None else shots
    if k < 0:
        raise ValueError(f"shots must be >= 0, got {k}")
    max_len = max_length or model.config.max_seq_len
    prefix = [tokenizer.eod_id] if bos else []
    label_names = list(task.labels)

    chosen = range(len(task.test)) if indices is None else indices
    requests, dropped, truncated = [], 0, 0
    for i in chosen:
        example = task.test[i]
        reqs, n_dropped, cut = _fit(task, tokenizer, example, sample_shots(task, i, k, seed), max_len, prefix)
        requests.extend(reqs)
        dropped += n_dropped > 0
        truncated += cut
    # The content-free prior of each answer, once per task.
    calibration = [
        (prefix + tokens, len(prefix) + start)
        for tokens, start in (
            split_continuation(tokenizer, task.calibration_prompt + task.target_delimiter, w)
            for w in task.labels.values()
        )
    ]
    if not bos and any(start < 1 for _, start in calibration):
        raise TaskError(f"{task.source}: calibration_prompt gives no context tokens")
    from bloomberg_style.evaluation.scoring import continuation_logprobs  # torch: imported when scoring

    scores = continuation_logprobs(model, requests + calibration, batch_size)
    prior = [lp for lp, _ in scores[len(requests) :]]

    records = []
    n_labels = len(label_names)
    for j, i in enumerate(chosen):
        example = task.test[i]
        item = scores[j * n_labels : (j + 1) * n_labels]
        record = {"line": example.line, "gold": example.label}
        for r, values in rule_scores(item, prior).items():
            record[r] = label_names[argmax(values)]
        record["logprobs"] = {name: round(lp, 5) for name, (lp, _) in zip(label_names, item)}
        records.append(record)
    return summarise(task, records, shots=k, seed=seed, rule=rule, dropped=dropped, truncated=truncated,
                     seconds=time.perf_counter() - start_time)  # fmt: skip


def summarise(
    task: Task, records: list[dict[str, Any]], *, shots: int, seed: int, rule: str | None,
    dropped: int, truncated: int, seconds: float,
) -> TaskResult:  # fmt: skip
    """The TaskResult of per-example records (from one scoring run, or merged from ranks)."""
    if not records:
        raise TaskError(f"{task.source}: no test examples scored")
    label_names = list(task.labels)
    gold = [r["gold"] for r in records]
    predicted = {r: [record[r] for record in records] for r in RULES}

    rules = {
        r: {"accuracy": accuracy(gold, predicted[r]), "weighted_f1": weighted_f1(gold, predicted[r])}
        for r in RULES
    }
    if rule is None:
        other = "accuracy" if task.metric == "weighted_f1" else "weighted_f1"
        chosen = max(RULES, key=lambda r: (rules[r][task.metric], rules[r][other], -RULES.index(r)))
    else:
        chosen = rule
    majority_label = Counter(gold).most_common(1)[0][0]
    always = [majority_label] * len(gold)
    return TaskResult(
        task=task.name,
        source=task.source,
        shots=shots,
        seed=seed,
        items=len(gold),
        labels=label_names,
        metric=task.metric,
        best_rule=chosen,
        accuracy=rules[chosen]["accuracy"],
        weighted_f1=rules[chosen]["weighted_f1"],
        rules=rules,
        majority={
            "label": majority_label,
            "accuracy": accuracy(gold, always),
            "weighted_f1": weighted_f1(gold, always),
        },
        shots_dropped=dropped,
        truncated=truncated,
        seconds=round(seconds, 3),
        predictions=records,
    )


def per_label_f1(result: TaskResult, rule: str | None = None) -> dict[str, float]:
    """F1 of each label under a rule (default: the best one), from the stored predictions."""
    rule = rule or result.best_rule
    gold = [p["gold"] for p in result.predictions]
    return f1_per_label(gold, [p[rule] for p in result.predictions])
