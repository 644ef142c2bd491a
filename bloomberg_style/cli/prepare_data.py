"""`bloomberg-style prepare-data` (and launch/prepare_data.py): encode a corpus into token shards.

    bloomberg-style prepare-data --input PATH... --tokenizer DIR --output PREFIX [--workers W]

writes PREFIX.bin / PREFIX.idx (each document followed by <|endoftext|>), PREFIX.stats.json,
and PREFIX.manifest.json + PREFIX.parts/ (the parts, which let a rerun after a crash redo only
what was unfinished). The work is bloomberg_style.data.prepare; the flags after --output are
PrepareOptions' fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from bloomberg_style.configlib import add_flags, from_flags
from bloomberg_style.corpus import CorpusError
from bloomberg_style.data.prepare import PrepareError, PrepareOptions, finalize, parse_slice, prepare

HELP = {
    "workers": "encoding processes, one core each (default 1)",
    "text_field": "JSON field / parquet column with the text",
    "batch_size": "documents per encode_batch call",
    "num_parts": "number of parts (default: 4 per worker)",
    "part_bytes": "at most about this many input bytes per part",
    "dedup": "drop exact duplicates",
    "overwrite": "discard existing output and start over",
    "merge": "keep only the parts (name the manifest as a domain)",
    "progress": "no progress bar",
}
SPECIAL = {
    "num_parts": {"flag": "--parts", "type": int},
    "dedup": {"choices": ("none", "exact")},
    "merge": {"flag": "--no-merge"},
    "progress": {"flag": "--no-progress"},
}


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--input", nargs="+", help="files, folders or globs (.txt .jsonl .jsonl.gz .json .parquet)"
    )
    parser.add_argument("--tokenizer", help="folder written by launch/train_tokenizer.py")
    parser.add_argument(
        "--output",
        required=True,
        help="output prefix: PREFIX.bin/.idx/.stats.json, PREFIX.manifest.json and PREFIX.parts/",
    )
    add_flags(parser, PrepareOptions, HELP, special=SPECIAL)
    parser.add_argument("--slice", default=None, help="K/N: prepare only slice K of N (a Slurm array task)")
    parser.add_argument("--finalize", action="store_true", help="validate the manifest's parts and merge")
    return parser


def _log(message: str) -> None:
    print(f"prepare_data: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Exit 2 with a one-line message on bad input."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    options = from_flags(PrepareOptions, args)
    try:
        if args.finalize:
            manifest = finalize(args.output, merge=options.merge, log=_log)
        else:
            if not args.input or not args.tokenizer:
                raise PrepareError("--input and --tokenizer are required (except with --finalize)")
            slice_spec = parse_slice(args.slice) if args.slice else None
            manifest = prepare(args.input, args.tokenizer, args.output, **dataclasses.asdict(options),
                               slice_spec=slice_spec, log=_log)  # fmt: skip
    except (CorpusError, FileNotFoundError, PrepareError) as err:
        parser.exit(2, f"prepare_data: error: {err}\n")
    summary = {**(manifest.get("totals") or {}), "parts": len(manifest["parts"])}
    summary.update({k: manifest.get(k) for k in ("complete", "merged", "last_run")})
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
