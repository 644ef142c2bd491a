"""Command-line fronts of launch/sft.py and launch/chat.py (importable and tested here)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_RECIPE = REPO / "configs" / "sft" / "demo.yaml"


def sft_main(argv: list[str] | None = None) -> int:
    from .formats import DataError
    from .recipe import RecipeError, load_recipe

    parser = argparse.ArgumentParser(description="Run an SFT recipe: chained stages, full or LoRA.")
    parser.add_argument("--recipe", default=str(DEMO_RECIPE), help="recipe YAML (default: the CPU demo)")
    parser.add_argument("--base", default=None, help="base model (overrides the recipe's `base`)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value: stages.0.lr=1e-4, stages.NAME.epochs=1, stages.*.epochs=1, defaults.x=...",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the resolved recipe and the stage plan")
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # set by deepspeed
    args = parser.parse_args(argv)
    try:
        recipe = load_recipe(args.recipe, args.set, base=args.base)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        from .chain import plan

        print(recipe.to_yaml())
        for name, out, done in plan(recipe):
            print(f"stage {name:<20} -> {out}  {'complete (skipped)' if done else 'to run'}")
        return 0
    from bloomberg_style.config import ConfigError

    from .chain import run_recipe

    try:
        results = run_recipe(recipe)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import torch.distributed as tdist

    if not tdist.is_initialized() or tdist.get_rank() == 0:
        print(summary_table(results))
    return max((r.exit_code for r in results), default=0)  # e.g. the requeue code after a pre-emption


def summary_table(results) -> str:
    lines = ["| stage | status | held-out loss before -> after | token F1 before -> after | output |"]
    lines.append("|---|---|---|---|---|")
    for r in results:
        b, a = r.report.get("before", {}), r.report.get("after", {})
        status = (
            f"stopped at step {r.step}" if not r.complete else ("trained" if r.step else "complete (skipped)")
        )
        lines.append(
            f"| {r.stage} | {status} | {_f(b.get('loss'))} -> {_f(a.get('loss'))} | "
            f"{_f(b.get('f1'))} -> {_f(a.get('f1'))} | {r.out_dir} |"
        )
    return "\n".join(lines)


def _f(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def chat_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Chat with a tuned model (streamed, multi-turn).")
    parser.add_argument(
        "--model", required=True, help="SFT stage folder, HF folder, adapter folder or our run"
    )
    parser.add_argument("--tokenizer", default="", help="tokenizer folder (default: the model's)")
    parser.add_argument("--template", default="", help="template name (default: the model's sft.json)")
    parser.add_argument("--recipe", default="", help="take the template from this recipe")
    parser.add_argument("--stage", default="", help="with --recipe: the stage whose template to use")
    parser.add_argument("--system", default=None, help="system text instead of the template's")
    parser.add_argument("--prompt", default=None, help="answer this one message and exit (for scripts)")
    parser.add_argument("--temperature", type=float, default=0.7, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=40, help="0 = off")
    parser.add_argument("--top-p", type=float, default=0.9, help="1 = off")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--max-context", type=int, default=0, help="keep only the last N tokens (0 = all)")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (reproducible answers)")
    parser.add_argument("--no-stream", action="store_true", help="print each answer whole")
    args = parser.parse_args(argv)

    from bloomberg_style.artifacts import load_model, load_tokenizer, tokenizer_dir

    from .chat import ChatSession, template_for_model
    from .generate import SamplingConfig

    try:
        sampling = SamplingConfig(
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            max_context=args.max_context,
            seed=args.seed,
        ).validate()
        template = template_for_model(args.model, args.template, args.recipe, args.stage)
        tok = load_tokenizer(args.tokenizer or tokenizer_dir(args.model))
        model = load_model(args.model)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    session = ChatSession(model, tok, template, sampling, system=args.system)

    def stream(piece: str) -> None:
        print(piece, end="", flush=True)

    on_text = None if args.no_stream else stream
    if args.prompt is not None:
        text = session.reply(args.prompt, on_text=on_text)
        print(text if args.no_stream else "", flush=True)
        return 0
    print(f"template {template.name}; /reset clears the history, /quit (or Ctrl-D) leaves", file=sys.stderr)
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
