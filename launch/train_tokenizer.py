"""Train the numeric-aware byte-level Unigram tokenizer on a corpus.

    python launch/train_tokenizer.py --input data/corpus/ --output runs/tokenizer [--vocab-size 131072]

Writes OUTPUT/tokenizer.json (Hugging Face tokenizers), the configs that
transformers.AutoTokenizer.from_pretrained(OUTPUT) reads, and
OUTPUT/training_stats.json (documents, bytes, vocab size, wall time).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.data.corpus import CorpusError, iter_texts, resolve_inputs  # noqa: E402
from tokenizer import train_from_texts  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input", nargs="+", required=True, help="files, folders or globs (.txt/.jsonl/.json/.parquet)"
    )
    parser.add_argument("--output", required=True, help="folder for tokenizer.json and training_stats.json")
    parser.add_argument("--vocab-size", type=int, default=131072, help="final vocabulary, EOD included")
    parser.add_argument("--text-field", default="text", help="JSON field / parquet column with the text")
    parser.add_argument("--max-piece-length", type=int, default=16, help="longest piece, in bytes")
    args = parser.parse_args(argv)
    try:
        resolve_inputs(args.input)  # a missing or unsupported input fails before anything is written
    except CorpusError as e:
        parser.error(str(e))
    stats = train_from_texts(
        iter_texts(args.input, text_field=args.text_field),
        args.output,
        vocab_size=args.vocab_size,
        max_piece_length=args.max_piece_length,
    )
    print(json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
