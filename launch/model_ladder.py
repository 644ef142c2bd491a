"""Print the model presets: a shim of `bloomberg-style model-ladder`.

python launch/model_ladder.py [--seq-len 2048] [--preset NAME ...]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.cli.model_ladder import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
