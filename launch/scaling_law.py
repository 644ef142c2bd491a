"""Size a run before spending the GPU budget: a shim of `bloomberg-style scaling-law`.

python launch/scaling_law.py            # the paper's inputs: 1.3M A100-40GB hours, 708B tokens
python launch/scaling_law.py --gpu-hours 2e5 --gpu h100-sxm --mfu 0.4 --json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.cli.scaling_law import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
