"""`bloomberg-style prepare-data` (and launch/prepare_data.py): encode a corpus into a token shard.

    bloomberg-style prepare-data --input PATH... --tokenizer DIR --output PREFIX [--workers W]

writes PREFIX.bin / PREFIX.idx (each document followed by <|endoftext|>) and
PREFIX.stats.json. The work is bloomberg_style.data.shards.write_token_shard.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from bloomberg_style.corpus import CorpusError
from bloomberg_style.data.shards import write_token_shard


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--input",
        nargs="+",
        required=True,
        help="files, folders or globs (.txt .jsonl .jsonl.gz .json .parquet)",
    )
    parser.add_argument("--tokenizer", required=True, help="folder written by launch/train_tokenizer.py")
    parser.add_argument(
        "--output", required=True, help="output prefix: writes PREFIX.bin, PREFIX.idx, PREFIX.stats.json"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="encoding processes (default 1: Rust threads only)"
    )
    parser.add_argument("--text-field", default="text", help="JSON field / parquet column with the text")
    parser.add_argument("--batch-size", type=int, default=256, help="documents per encode_batch call")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        stats = write_token_shard(
            args.input,
            args.tokenizer,
            args.output,
            text_field=args.text_field,
            workers=args.workers,
            batch_size=args.batch_size,
            progress=not args.no_progress,
        )
    except (CorpusError, FileNotFoundError, ValueError) as err:
        parser.exit(2, f"prepare_data: error: {err}\n")
    print(json.dumps(asdict(stats), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
