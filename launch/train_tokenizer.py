"""Train the numeric-aware Unigram tokenizer: a shim of `bloomberg-style train-tokenizer`.

python launch/train_tokenizer.py --input corpus/financial corpus/general --output runs/tokenizer
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.cli.train_tokenizer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
