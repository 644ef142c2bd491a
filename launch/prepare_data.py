"""Encode a corpus into a megatron-core token shard: a shim of `bloomberg-style prepare-data`.

python launch/prepare_data.py --input PATH... --tokenizer DIR --output PREFIX [--workers W]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.cli.prepare_data import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
