"""Evaluate a model the paper's way: held-out loss and bits per byte per domain, few-shot tasks.

    python launch/evaluate.py --checkpoint runs/demo --tasks configs/eval/fpb_demo.jsonl
    python launch/evaluate.py --checkpoint HF_DIR --data financial=shards/fin --text web=web/*.jsonl

--checkpoint is a run folder, a checkpoint folder or a Hugging Face BLOOM folder. With
neither --data nor --text, a run's own domains are scored on their validation split.
Results: printed as a table, and written as results.json / results.md to --output
(default for runs: RUN/eval/step_N/). The work is bloomberg_style.evaluation.run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.corpus import CorpusError  # noqa: E402
from bloomberg_style.evaluation.fewshot import RULES, TaskError  # noqa: E402
from bloomberg_style.evaluation.run import EvaluationError, run_evaluation  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint", required=True, help="run folder, checkpoint folder or HF BLOOM folder"
    )
    parser.add_argument("--data", nargs="+", default=[], metavar="NAME=PREFIX", help="token shards to score")
    parser.add_argument(
        "--text",
        nargs="+",
        default=[],
        metavar="NAME=PATH",
        help="raw documents to score (repeat a NAME to join paths)",
    )
    parser.add_argument("--tasks", nargs="+", default=[], metavar="FILE.jsonl", help="few-shot task files")
    parser.add_argument(
        "--shots", type=int, default=None, help="shots per test example (default: each task's own)"
    )
    parser.add_argument("--seed", type=int, default=1234, help="seed for drawing the shots")
    parser.add_argument(
        "--rule", choices=RULES, default=None, help="fix the scoring rule (default: best of three)"
    )
    parser.add_argument("--output", default=None, help="folder for results.json / results.md")
    parser.add_argument(
        "--tokenizer", default=None, help="tokenizer folder (default: the run's or the HF folder's)"
    )
    parser.add_argument(
        "--split", choices=("valid", "all"), default="valid", help="shard documents to score (default: valid)"
    )
    parser.add_argument(
        "--valid-fraction", type=float, default=None, help="default: the run's data.valid_fraction"
    )
    parser.add_argument("--text-field", default="text", help="JSON field / parquet column with the text")
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per row (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per forward pass")
    parser.add_argument("--max-tokens", type=int, default=0, help="score at most this many tokens per shard")
    parser.add_argument(
        "--limit", type=int, default=0, help="score only the first N test examples of each task"
    )
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    args = parser.parse_args(argv)
    try:
        report = run_evaluation(
            args.checkpoint,
            data=args.data,
            text=args.text,
            tasks=args.tasks,
            shots=args.shots,
            seed=args.seed,
            rule=args.rule,
            output=args.output,
            tokenizer=args.tokenizer,
            split=args.split,
            valid_fraction=args.valid_fraction,
            text_field=args.text_field,
            seq_len=args.seq_len,
            batch_size=args.batch_size,
            max_tokens=args.max_tokens,
            limit=args.limit,
            dtype=args.dtype,
            device=args.device,
            log=lambda message: print(message, flush=True),
        )
    except (EvaluationError, TaskError, CorpusError, FileNotFoundError) as err:
        parser.exit(2, f"evaluate: error: {err}\n")
    print("\n" + report.to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
