"""`bloomberg-style evaluate` (and launch/evaluate.py): held-out loss and bits per byte per domain,
few-shot tasks, the paper's way.

    bloomberg-style evaluate --checkpoint runs/demo --tasks configs/eval/fpb_demo.jsonl
    bloomberg-style evaluate --checkpoint HF_DIR --data financial=shards/fin --text web=web/*.jsonl
    bloomberg-style evaluate --convert fpb Sentences_50Agree.txt --output fpb.jsonl

--checkpoint is a run folder, a checkpoint folder or a Hugging Face BLOOM folder. With
neither --data nor --text, a run's own domains are scored on their validation split.
Results: printed as a table, and written as results.json / results.md to --output
(default for runs: RUN/eval/step_N/). The flags are the fields of EvalOptions.

    deepspeed --num_gpus 8 launch/evaluate.py --checkpoint RUN --shard-weights --dtype bf16 --tasks ner.jsonl

--shard-weights builds the model ZeRO-3 partitioned over the launcher's ranks
(bloomberg_style/evaluation/sharded.py) for a checkpoint too large for one device.
"""

from __future__ import annotations

import argparse
import os
import sys

from bloomberg_style.cli.errors import command
from bloomberg_style.configlib import add_flags, from_flags
from bloomberg_style.corpus import CorpusError
from bloomberg_style.evaluation.fewshot import RULES, TaskError
from bloomberg_style.evaluation.run import DTYPES, EvalOptions, EvaluationError, evaluate

HELP = {
    "checkpoint": "run folder, checkpoint folder or HF BLOOM folder",
    "data": "token shards to score",
    "text": "raw documents to score (repeat a NAME to join paths)",
    "tasks": "few-shot task files",
    "shots": "shots per test example (default: each task's own)",
    "seed": "seed for drawing the shots",
    "rule": "fix the scoring rule (default: best of three)",
    "output": "folder for results.json / results.md",
    "tokenizer": "tokenizer folder (default: the run's or the HF folder's)",
    "split": "shard documents to score (default: valid)",
    "valid_fraction": "default: the run's data.valid_fraction",
    "valid_seed": "seed of the validation document draw (default: the run's data.valid_seed)",
    "text_field": "JSON field / parquet column with the text",
    "seq_len": "tokens per row (default: the model's)",
    "batch_size": "sequences per forward pass",
    "max_tokens": "score at most this many tokens per shard",
    "limit": "score only the first N test examples of each task",
    "device": "cpu, cuda, cuda:1 ... (default: cuda if available)",
    "shard_weights": "ZeRO-3 inference for a model too large for one device: each rank holds 1/N of the "
    "weights and every rank scores every example (run under deepspeed / torchrun; our BLOOM only)",
}
SPECIAL = {
    "checkpoint": {"required": True},
    # "extend": `--text a=X --text b=Y` scores both (a plain nargs flag keeps only the last)
    "data": {"nargs": "+", "action": "extend", "metavar": "NAME=PREFIX"},
    "text": {"nargs": "+", "action": "extend", "metavar": "NAME=PATH"},
    "tasks": {"nargs": "+", "action": "extend", "metavar": "FILE.jsonl"},
    "rule": {"choices": RULES},
    "split": {"choices": ("valid", "all")},
    "dtype": {"choices": DTYPES},
}


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_flags(parser, EvalOptions, HELP, special=SPECIAL)
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # set by deepspeed
    return parser


def convert_main(argv: list[str], prog: str | None = None) -> int:
    """`evaluate --convert NAME SRC... --output TASK.jsonl`: a public data set -> a task file."""
    from bloomberg_style.evaluation.converters import (
        CONVERTERS,
        ConvertError,
        convert,
        parse_source,
        write_task,
    )

    parser = argparse.ArgumentParser(prog=prog, description="Convert a public data set to a task file.")
    parser.add_argument("--convert", nargs="+", required=True, metavar=("NAME", "SRC"),
                        help=f"data set ({', '.join(CONVERTERS)}) and its files: PATH or train=PATH / test=PATH")  # fmt: skip
    parser.add_argument("--output", required=True, help="task file to write (.jsonl)")
    parser.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of rows of a plain PATH scored"
    )
    parser.add_argument("--seed", type=int, default=1234, help="seed of the train/test assignment")
    parser.add_argument("--force", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)
    name, *sources = args.convert
    try:
        if not 0 < args.test_fraction <= 1:
            raise ConvertError(f"--test-fraction must be in (0, 1], got {args.test_fraction}")
        header, records = convert(name, [parse_source(s, args.test_fraction, args.seed) for s in sources])
        path = write_task(args.output, header, records, force=args.force)
    except ConvertError as err:
        parser.exit(2, f"evaluate --convert: error: {err}\n")
    splits = {split: sum(r.get("split") == split for r in records) for split in ("train", "test")}
    print(f"wrote {path}: {header['task']}, {splits['test']} test and {splits['train']} train examples")
    return 0


@command
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--convert" in argv:
        return convert_main(argv, prog)
    parser = build_parser(prog)
    options = from_flags(EvalOptions, parser.parse_args(argv))
    try:
        report = evaluate(options, log=lambda message: print(message, flush=True))
    except (EvaluationError, TaskError, CorpusError, FileNotFoundError) as err:
        parser.exit(2, f"evaluate: error: {err}\n")
    if os.environ.get("RANK", "0") == "0":  # under a launcher every rank has the report; one prints it
        print("\n" + report.to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
