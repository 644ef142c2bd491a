"""Pretrain a BLOOM model with DeepSpeed: a shim of `bloomberg-style pretrain` for launchers.

python launch/pretrain.py                                  # the CPU demo
deepspeed --num_gpus 2 launch/pretrain.py --config configs/pretrain/NAME.yaml
python launch/pretrain.py --config ... --set train.steps=100 --dry-run
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.cli.pretrain import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
