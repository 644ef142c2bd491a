"""Run an SFT recipe: a shim of `bloomberg-style sft` (DeepSpeed's launcher needs a file).

python launch/sft.py                                       # the demo recipe (after launch/pretrain.py)
deepspeed launch/sft.py --recipe configs/sft/demo.yaml
deepspeed --num_gpus 8 launch/sft.py --recipe configs/sft/chatdoctor.yaml --base HF_DIR_OR_RUN
python launch/sft.py --recipe ... --set stages.0.lr=1e-4 --set stages.*.epochs=1 --dry-run
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.cli.sft import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
