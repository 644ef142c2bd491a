"""Train the numeric-aware byte-level Unigram tokenizer on a corpus, split and merge.

    python launch/train_tokenizer.py --input corpus/financial corpus/general --output runs/tokenizer \
        [--vocab-size 131072] [--chunks N | --chunk-bytes 32M] [--chunk-vocab-size 65536] \
        [--workers W] [--text-field text] [--sweep 25000:550000[:points]]

Each --input (file, folder or glob) is one source: chunks never mix sources,
and chunk models are merged within a source before sources are merged.
Writes OUTPUT/tokenizer.json (Hugging Face tokenizers) and the configs that
transformers.AutoTokenizer.from_pretrained(OUTPUT) reads, OUTPUT/merged_model.json
(the unpruned merged model), OUTPUT/training_stats.json and, with --sweep,
OUTPUT/vocab_sweep.{json,png}. See docs/tokenizer.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.corpus import CorpusError  # noqa: E402
from tokenizer import TRAINERS, parse_sweep, sweep_table, train_split_merge  # noqa: E402
from tokenizer.split_merge import resolve_sources  # noqa: E402

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input",
        nargs="+",
        required=True,
        help="files, folders or globs (.txt/.jsonl/.json/.parquet); one source each",
    )
    parser.add_argument("--output", required=True, help="folder for tokenizer.json and training_stats.json")
    parser.add_argument("--vocab-size", type=int, default=131072, help="final vocabulary, EOD included")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--chunks", type=int, help="number of chunks in all (shared out by bytes per source)")
    split.add_argument("--chunk-bytes", type=parse_bytes, help="bytes per chunk, e.g. 32M (the default)")
    parser.add_argument("--chunk-vocab-size", type=int, default=65536, help="pieces learned per chunk")
    parser.add_argument(
        "--workers", type=int, default=None, help="parallel chunk trainers (default: all CPUs)"
    )
    parser.add_argument("--text-field", default="text", help="JSON field / parquet column with the text")
    parser.add_argument(
        "--sweep",
        type=sweep_arg,
        help="LO:HI[:POINTS]: vocabulary sweep on a held-out sample, e.g. 25000:550000",
    )
    parser.add_argument(
        "--heldout-every", type=int, default=50, help="with --sweep: hold out every Nth document"
    )
    parser.add_argument(
        "--trainer", choices=TRAINERS, default="sentencepiece", help="per-chunk Unigram trainer"
    )
    parser.add_argument("--max-piece-length", type=int, default=16, help="longest piece, in bytes")
    parser.add_argument("--keep-work", action="store_true", help="keep chunk and source models in OUTPUT")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        resolve_sources(args.input)  # a missing or unsupported input fails before anything is written
    except CorpusError as e:
        parser.error(str(e))
    try:
        stats = train_split_merge(
            args.input,
            args.output,
            vocab_size=args.vocab_size,
            chunks=args.chunks,
            chunk_bytes=args.chunk_bytes,
            chunk_vocab_size=args.chunk_vocab_size,
            workers=args.workers,
            text_field=args.text_field,
            trainer=args.trainer,
            max_piece_length=args.max_piece_length,
            sweep=args.sweep,
            heldout_every=args.heldout_every,
            keep_work=args.keep_work,
            show_progress=not args.quiet,
        )
    except (CorpusError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = {k: v for k, v in stats.items() if k not in ("chunks", "bytes_per_chunk", "sweep")}
    print(json.dumps(summary, indent=2))
    if "sweep" in stats:
        print(sweep_table(stats["sweep"]["rows"]))
    print(f"tokenizer written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
