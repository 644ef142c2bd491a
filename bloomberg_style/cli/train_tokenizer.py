"""`bloomberg-style train-tokenizer` (and launch/train_tokenizer.py): train the numeric-aware byte-level Unigram tokenizer on a corpus, split and merge.

    bloomberg-style train-tokenizer --input corpus/financial corpus/general --output runs/tokenizer \
        [--vocab-size 131072] [--chunks N | --chunk-bytes 32M] [--chunk-vocab-size 65536] \
        [--workers W] [--text-field text] [--sweep 25000:550000[:points]]

Each --input (file, folder or glob) is one source: chunks never mix sources,
and chunk models are merged within a source before sources are merged.
Writes OUTPUT/tokenizer.json (Hugging Face tokenizers) and the configs that
transformers.AutoTokenizer.from_pretrained(OUTPUT) reads, OUTPUT/merged_model.json
(the unpruned merged model), OUTPUT/training_stats.json and, with --sweep,
OUTPUT/vocab_sweep.{json,png}. See docs/tokenizer.md. The flags are TokenizerOptions' fields.

Across nodes (launch/slurm/train_tokenizer.sbatch): `--chunk-only K/N` trains and saves chunk
K of N into OUTPUT/chunks/ (one Slurm array task each), then `--merge-only` (no --input needed)
merges them; the tokenizer equals the single-machine one trained with `--chunks N`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bloomberg_style.cli.errors import command
from bloomberg_style.configlib import add_flags, from_flags
from bloomberg_style.corpus import CorpusError
from tokenizer import TRAINERS, parse_sweep, sweep_table
from tokenizer.options import TokenizerOptions
from tokenizer.split_merge import resolve_sources

DESCRIPTION = "Train the numeric-aware byte-level Unigram tokenizer on a corpus, split and merge."
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
HELP = {
    "vocab_size": "final vocabulary, EOD included",
    "chunks": "number of chunks in all (shared out by bytes per source)",
    "chunk_bytes": "bytes per chunk, e.g. 32M (the default)",
    "chunk_vocab_size": "pieces learned per chunk",
    "workers": "parallel chunk trainers (default: all CPUs)",
    "text_field": "JSON field / parquet column with the text",
    "sweep": "LO:HI[:POINTS]: vocabulary sweep on a held-out sample, e.g. 25000:550000",
    "heldout_every": "with --sweep: hold out every Nth document",
    "trainer": "per-chunk Unigram trainer",
    "max_piece_length": "longest piece, in bytes",
    "keep_work": "keep chunk and source models in OUTPUT",
    "show_progress": "no progress bars",
    "chunk_only": "K/N: train and save only chunk K of N into OUTPUT/chunks/ (a Slurm array task)",
    "merge_only": "merge the chunks saved in OUTPUT/chunks/ into the tokenizer (after every --chunk-only K/N)",
}
FLAGS = ["vocab_size", "chunk_vocab_size", "workers", "text_field", "sweep", "heldout_every", "trainer",
         "max_piece_length", "keep_work", "show_progress", "chunk_only", "merge_only"]  # fmt: skip


def parse_bytes(text: str) -> int:
    """ "64M", "1.5G", "1000000" -> bytes (binary units; a trailing B or iB is allowed)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1] if t and t[-1] in _UNITS else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 64M, 1G, 1000000)") from None
    size = int(value * _UNITS[unit])
    if size < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: size must be positive")
    return size


def sweep_arg(text: str) -> tuple[int, int, int]:
    try:
        return parse_sweep(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    parser.add_argument(
        "--input",
        nargs="+",
        help="files, folders or globs (.txt/.jsonl/.json/.parquet); one source each (not with --merge-only)",
    )
    parser.add_argument("--output", required=True, help="folder for tokenizer.json and training_stats.json")
    parser.add_argument("--overwrite", action="store_true", help="replace a tokenizer already in --output")
    split = parser.add_mutually_exclusive_group()
    add_flags(parser, TokenizerOptions, HELP, only=["chunks", "chunk_bytes"],
              special={"chunks": {"group": split}, "chunk_bytes": {"group": split, "type": parse_bytes}})  # fmt: skip
    special = {
        "workers": {"type": int},
        "sweep": {"type": sweep_arg},
        "trainer": {"choices": TRAINERS},
        "show_progress": {"flag": "--quiet"},
        "chunk_only": {"metavar": "K/N"},
    }
    add_flags(parser, TokenizerOptions, HELP, only=FLAGS, special=special)
    return parser


@command
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.merge_only and args.input:
        parser.error("--merge-only reads the chunk plan in OUTPUT/chunks/; give no --input")
    if not args.merge_only:
        if not args.input:
            parser.error("the following arguments are required: --input")
        try:
            resolve_sources(args.input)  # a missing or unsupported input fails before anything is written
        except CorpusError as e:
            parser.error(str(e))
    existing = [f for f in ("tokenizer.json", "merged_model.json") if (Path(args.output) / f).exists()]
    if (
        existing and not args.overwrite and not args.chunk_only
    ):  # shards made with the old one would no longer match it
        parser.exit(2, f"{parser.prog}: error: {Path(args.output) / existing[0]} exists: pass --overwrite "
                    "to replace that tokenizer (shards made with it would no longer match)\n")  # fmt: skip
    if Path(args.output).exists() and not Path(args.output).is_dir():
        parser.exit(2, f"{parser.prog}: error: --output {args.output} is a file, not a folder\n")
    try:
        stats = from_flags(TokenizerOptions, args).train(args.input, args.output)
    except (CorpusError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = {k: v for k, v in stats.items() if k not in ("chunks", "bytes_per_chunk", "sweep")}
    print(json.dumps(summary, indent=2))
    if "sweep" in stats:
        print(sweep_table(stats["sweep"]["rows"]))
    if args.chunk_only:
        print(f"chunk {args.chunk_only} written to {Path(args.output) / 'chunks'} (then run --merge-only)")
        return 0
    print(f"tokenizer written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
