"""`bloomberg-style COMMAND [ARGS]`: dispatch to the subcommand modules (imported lazily)."""

from __future__ import annotations

import importlib
import sys

from bloomberg_style.cli.errors import command

COMMANDS = {
    "pretrain": ("pretrain", "pretrain a BLOOM model with DeepSpeed (no arguments: the CPU demo)"),
    "train-tokenizer": ("train_tokenizer", "train the numeric-aware Unigram tokenizer, split and merge"),
    "prepare-data": ("prepare_data", "encode a corpus into a megatron-core token shard"),
    "sft": ("sft", "run an SFT recipe: chained stages, full or LoRA"),
    "evaluate": ("evaluate", "held-out loss, bits per byte and few-shot tasks of a model"),
    "export-hf": ("export_hf", "export a checkpoint as a Hugging Face BLOOM folder"),
    "chat": ("chat", "chat with a tuned model (streamed, multi-turn)"),
    "scaling-law": ("scaling_law", "size a run before spending the GPU budget"),
    "model-ladder": ("model_ladder", "print the model presets: shapes, parameters, FLOPs"),
}


def usage() -> str:
    lines = ["usage: bloomberg-style COMMAND [ARGS...]   (bloomberg-style COMMAND --help)", "", "commands:"]
    lines += [f"  {name:<16} {about}" for name, (_, about) in COMMANDS.items()]
    lines += [
        "",
        "Bad input exits with code 2 and one error line; add --debug (or set",
        "BLOOMBERG_STYLE_DEBUG=1) to any command to see the traceback.",
    ]
    return "\n".join(lines)


@command
def main(argv: list[str] | None = None, prog: str | None = "bloomberg-style") -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"bloomberg-style: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bloomberg_style.cli.{COMMANDS[name][0]}")
    return module.main(rest, prog=f"bloomberg-style {name}")


if __name__ == "__main__":
    sys.exit(main())
