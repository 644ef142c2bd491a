"""Chat with a model: an SFT stage folder, a HF BLOOM folder, a LoRA adapter folder or our run.

python launch/chat.py --model runs/sft-demo/finance-chat
python launch/chat.py --model runs/sft-demo/finance-chat --prompt "What does dividend yield mean?"
python launch/chat.py --model HF_DIR --template alpaca --temperature 0.8 --top-p 0.95 --max-new-tokens 200
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.sft.cli import chat_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(chat_main())
