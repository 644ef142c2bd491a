"""`bloomberg-style chat` (and launch/chat.py): chat with an SFT stage, HF, adapter or run folder.

bloomberg-style chat --model runs/sft-demo/finance-chat
bloomberg-style chat --model runs/sft-demo/finance-chat --prompt "What does dividend yield mean?"
bloomberg-style chat --model HF_DIR --template alpaca --temperature 0.8 --top-p 0.95
"""

from __future__ import annotations

import argparse
import sys

from bloomberg_style.cli.errors import command
from bloomberg_style.configlib import add_flags, from_flags
from bloomberg_style.sft.generate import SamplingConfig

SAMPLING_HELP = {
    "temperature": "0 = greedy",
    "top_k": "0 = off",
    "top_p": "1 = off",
    "max_new_tokens": "tokens per answer at most",
    "max_context": "keep only the last N tokens (0 = all)",
    "seed": "sampling seed (reproducible answers)",
}


@command
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Chat with a tuned model (streamed, multi-turn).")
    parser.add_argument(
        "--model", required=True, help="SFT stage folder, HF folder, adapter folder or our run"
    )
    parser.add_argument("--tokenizer", default="", help="tokenizer folder (default: the model's)")
    parser.add_argument("--template", default="", help="template name (default: the model's sft.json)")
    parser.add_argument("--recipe", default="", help="take the template from this recipe")
    parser.add_argument("--stage", default="", help="with --recipe: the stage whose template to use")
    parser.add_argument("--system", default=None, help="system text instead of the template's")
    parser.add_argument("--prompt", default=None, help="answer this one message and exit (for scripts)")
    add_flags(parser, SamplingConfig, SAMPLING_HELP)  # the sampling flags are SamplingConfig's fields
    parser.add_argument("--no-stream", action="store_true", help="print each answer whole")
    parser.add_argument(
        "--knowledge", default="", help="JSONL knowledge base (id, title, text) to retrieve from"
    )
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="run a HF base folder's own model code (auto_map)"
    )
    args = parser.parse_args(argv)

    from bloomberg_style.artifacts import load_model, load_tokenizer, tokenizer_dir
    from bloomberg_style.sft.chat import ChatSession, knowledge_retriever, show_retrieval, template_for_model

    try:
        sampling = from_flags(SamplingConfig, args).validate()
        tok = load_tokenizer(args.tokenizer or tokenizer_dir(args.model), args.trust_remote_code)
        template = template_for_model(args.model, args.template, args.recipe, args.stage, tok=tok)
        retriever = knowledge_retriever(args.knowledge) if args.knowledge else None
        model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    session = ChatSession(
        model, tok, template, sampling, system=args.system, retriever=retriever, on_retrieval=show_retrieval
    )

    def stream(piece: str) -> None:
        print(piece, end="", flush=True)

    on_text = None if args.no_stream else stream
    if args.prompt is not None:
        text = session.reply(args.prompt, on_text=on_text)
        print(text if args.no_stream else "", flush=True)
        return 0
    name = template.name if template else "the tokenizer's chat template"
    print(f"template {name}; /reset clears the history, /quit (or Ctrl-D) leaves", file=sys.stderr)
    while True:
        try:
            message = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        if not message:
            continue
        if message in ("/quit", "/exit"):
            return 0
        if message == "/reset":
            session.reset()
            print("(history cleared)", file=sys.stderr)
            continue
        print("bot> ", end="", flush=True)
        text = session.reply(message, on_text=on_text)
        print(text if args.no_stream else "", flush=True)


if __name__ == "__main__":
    sys.exit(main())
