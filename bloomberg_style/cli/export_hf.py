"""`bloomberg-style export-hf` (and launch/export_hf.py): a checkpoint as a Hugging Face BLOOM folder.

bloomberg-style export-hf --checkpoint runs/NAME --output hf/NAME [--dtype bfloat16] [--tokenizer DIR]
"""

from __future__ import annotations

import sys

from bloomberg_style.cli.errors import command


@command
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from bloomberg_style.export.folder import main as export_main

    return export_main(argv, prog)


if __name__ == "__main__":
    sys.exit(main())
