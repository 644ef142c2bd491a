"""`bloomberg-style model-ladder` (and launch/model_ladder.py): the model presets, their layers,
hidden size, heads, exact parameters and FLOPs per token.

    bloomberg-style model-ladder [--seq-len 2048] [--preset NAME ...]
"""

from __future__ import annotations

import sys

from bloomberg_style.cli.errors import command


@command
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from bloomberg_style.sizing.ladder import main as ladder_main

    return ladder_main(argv)


if __name__ == "__main__":
    sys.exit(main())
