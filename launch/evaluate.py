"""Evaluate a model the paper's way: a shim of `bloomberg-style evaluate`.

python launch/evaluate.py --checkpoint runs/demo --tasks configs/eval/fpb_demo.jsonl
python launch/evaluate.py --checkpoint HF_DIR --data financial=shards/fin --text web=web/*.jsonl
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.cli.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
