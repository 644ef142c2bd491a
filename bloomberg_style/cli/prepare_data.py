"""`bloomberg-style prepare-data` (and launch/prepare_data.py): encode a corpus into token shards.

    bloomberg-style prepare-data --input PATH... --tokenizer DIR --output PREFIX [--workers W]

writes PREFIX.bin / PREFIX.idx (each document followed by <|endoftext|>), PREFIX.stats.json,
and PREFIX.manifest.json + PREFIX.parts/ (the parts, which let a rerun after a crash redo only
what was unfinished). The work is bloomberg_style.data.prepare.
"""

from __future__ import annotations

import argparse
import sys

from bloomberg_style.cli.errors import command
from bloomberg_style.data.prepare import add_arguments, run


@command
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run(parser.parse_args(argv), parser)


if __name__ == "__main__":
    sys.exit(main())
