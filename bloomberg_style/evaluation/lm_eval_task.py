"""Our few-shot task files as local lm-evaluation-harness tasks.

    python -m bloomberg_style.evaluation.lm_eval_task configs/eval/fpb_demo.jsonl --output lm_eval_tasks
    lm_eval --model hf --model_args pretrained=HF_DIR --tasks fpb_demo --include_path lm_eval_tasks

writes OUT/NAME.yaml (a multiple_choice task: our prompt as doc_to_text, the label words as
doc_to_choice) and OUT/NAME_{test,train}.jsonl next to it, read by the `json` dataset
builder, so lm-eval needs no hub access. lm-eval reports acc (our "plain" rule) and
acc_norm (per-character normalisation; ours normalises per token).

Tokenization. lm-eval moves whitespace at the end of the context into the continuation
and assumes encode(context) is a prefix of encode(context + continuation). With the
paper's tokenizer the space after "Answer:" may be its own token or join the colon, so
for identical numbers to `launch/evaluate.py` (zero-shot, rule plain, bos=False) use a
task with target_delimiter "" (the answer follows the prompt directly).
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path

import yaml

from bloomberg_style.evaluation.fewshot import Task, load_task


def jinja_prompt(prompt: str) -> str:
    """Our str.format prompt as a Jinja template ("{text}" -> "{{text}}")."""
    out = []
    for literal, name, spec, conversion in string.Formatter().parse(prompt):
        if any(mark in literal for mark in ("{{", "{%", "{#")):
            raise ValueError(f"prompt text {literal!r} contains Jinja syntax; lm-eval would interpret it")
        out.append(literal)
        if name is not None:
            if spec or conversion:
                raise ValueError(
                    f"prompt field {{{name}}} has a format spec; lm-eval templates cannot express it"
                )
            out.append("{{" + name + "}}")
    return "".join(out)


def task_name(task: Task) -> str:
    """lm-eval task names are identifiers: fpb-demo -> fpb_demo."""
    return "".join(c if c.isalnum() else "_" for c in task.name)


def write_lm_eval_task(task: Task | str | Path, out_dir: str | Path) -> Path:
    """Write the YAML and data files of one task; return the YAML's path."""
    if not isinstance(task, Task):
        task = load_task(task)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    name = task_name(task)
    labels = list(task.labels)
    files = {}
    for split, examples in (("test", task.test), ("train", task.train)):
        if not examples:
            continue
        path = out / f"{name}_{split}.jsonl"
        rows = [{**e.fields, "label": e.label, "label_index": labels.index(e.label)} for e in examples]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        files[split] = str(path)
    config = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": files},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": jinja_prompt(task.prompt),
        "doc_to_choice": list(task.labels.values()),
        "doc_to_target": "label_index",
        "target_delimiter": task.target_delimiter,
        "fewshot_delimiter": task.separator,
        "metric_list": [
            {"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")
        ],
    }
    if task.train:
        config["fewshot_split"] = "train"
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write our task files as local lm-eval tasks.")
    parser.add_argument(
        "tasks", nargs="+", help="task files (JSONL, see bloomberg_style/evaluation/fewshot.py)"
    )
    parser.add_argument("--output", required=True, help="folder to pass to lm_eval --include_path")
    args = parser.parse_args(argv)
    for task in args.tasks:
        print(write_lm_eval_task(task, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
