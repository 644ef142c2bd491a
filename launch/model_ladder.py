"""Print the model presets: layers, hidden size, heads, exact parameters, FLOPs per token.

python launch/model_ladder.py [--seq-len 2048] [--preset NAME ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.sizing.ladder import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
