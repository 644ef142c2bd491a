"""Pretrain a BLOOM model with DeepSpeed.

python launch/pretrain.py                                  # the CPU demo
deepspeed --num_gpus 2 launch/pretrain.py --config configs/pretrain/NAME.yaml
python launch/pretrain.py --config ... --set train.steps=100 --dry-run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.training.cli import pretrain_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(pretrain_main(argparse.ArgumentParser(description=__doc__.splitlines()[0])))
