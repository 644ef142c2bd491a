"""Export a checkpoint as a Hugging Face BLOOM folder: a shim of `bloomberg-style export-hf`.

python launch/export_hf.py --checkpoint runs/NAME --output hf/NAME [--dtype bfloat16] [--tokenizer DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.cli.export_hf import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
