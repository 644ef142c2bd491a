"""Supervised fine-tuning: run a recipe's chained stages (full or LoRA) with DeepSpeed.

python launch/sft.py                                       # the CPU demo recipe (after launch/pretrain.py)
deepspeed launch/sft.py --recipe configs/sft/demo.yaml
deepspeed --num_gpus 8 launch/sft.py --recipe configs/sft/chatdoctor.yaml --base HF_DIR_OR_RUN
python launch/sft.py --recipe ... --set stages.0.lr=1e-4 --set stages.*.epochs=1 --dry-run
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.sft.cli import sft_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(sft_main())
