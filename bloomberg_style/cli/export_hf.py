"""`bloomberg-style export-hf` (and launch/export_hf.py): a checkpoint as a Hugging Face BLOOM folder.

bloomberg-style export-hf --checkpoint runs/NAME --output hf/NAME [--dtype bfloat16] [--tokenizer DIR] [--max-shard-size 5GB]

The flags are export/folder.py's ExportOptions fields.
"""

from __future__ import annotations

import argparse
import sys

from bloomberg_style.cli.errors import command
from bloomberg_style.configlib import add_flags, from_flags

HELP = {
    "checkpoint": "run folder, RUN/checkpoints or a step_* folder",
    "output": "folder to write (created)",
    "dtype": "weights dtype (default: float32)",
    "tokenizer": "tokenizer folder (default: RUN/tokenizer)",
    "overwrite": "write into an existing, non-empty --output folder",
    "max_shard_size": "largest weights file; bigger models are split into shards with an index (default: 5GB)",
}


@command
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from bloomberg_style.export.folder import DTYPE_NAMES, ExportOptions

    parser = argparse.ArgumentParser(
        prog=prog, description="Export one of our checkpoints as a Hugging Face BLOOM folder."
    )
    special = {
        "checkpoint": {"required": True},
        "output": {"required": True},
        "dtype": {"choices": DTYPE_NAMES},
    }
    add_flags(parser, ExportOptions, HELP, special=special)
    options = from_flags(ExportOptions, parser.parse_args(argv))
    try:
        out = options.run()
    except (FileNotFoundError, ValueError) as exc:  # no checkpoint there, output exists, bad folder
        print(f"error: {exc}", file=sys.stderr)
        return 2
    weights = sorted(p.name for p in out.glob("model*.safetensors*"))
    print(f"wrote {out} (config.json, {', '.join(weights)}, tokenizer)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
