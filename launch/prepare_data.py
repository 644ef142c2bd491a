"""Encode a corpus into megatron-core token shards, in parallel and resumably.

    python launch/prepare_data.py --input PATH... --tokenizer DIR --output PREFIX [--workers W]

writes PREFIX.bin / PREFIX.idx (each document followed by <|endoftext|>),
PREFIX.stats.json, and PREFIX.manifest.json + PREFIX.parts/ (the parts, which
let a rerun after a crash redo only what was unfinished). The work is
bloomberg_style.data.prepare.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from bloomberg_style.data.prepare import add_arguments, run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run(parser.parse_args(argv), parser)


if __name__ == "__main__":
    sys.exit(main())
