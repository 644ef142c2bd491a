"""Chat with a model: a shim of `bloomberg-style chat`.

python launch/chat.py --model runs/sft-demo/finance-chat
python launch/chat.py --model runs/sft-demo/finance-chat --prompt "What does dividend yield mean?"
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.cli.chat import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
