"""`bloomberg-style sft` (and launch/sft.py): run an SFT recipe, chained stages, full or LoRA.

bloomberg-style sft                                      # the CPU demo recipe (after pretrain)
deepspeed --num_gpus 8 launch/sft.py --recipe configs/sft/chatdoctor.yaml --base HF_DIR_OR_RUN
bloomberg-style sft --recipe ... --set stages.0.lr=1e-4 --set stages.*.epochs=1 --dry-run
"""

from __future__ import annotations

import argparse
import sys

from bloomberg_style.configlib import add_set_flag, packaged

DEMO_RECIPE = packaged("sft/demo.yaml")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from bloomberg_style.sft.formats import DataError
    from bloomberg_style.sft.recipe import RecipeError, load_recipe

    parser = argparse.ArgumentParser(
        prog=prog, description="Run an SFT recipe: chained stages, full or LoRA."
    )
    parser.add_argument("--recipe", default=str(DEMO_RECIPE), help="recipe YAML (default: the CPU demo)")
    parser.add_argument("--base", default=None, help="base model (overrides the recipe's `base`)")
    add_set_flag(parser, "stages.0.lr=1e-4, stages.NAME.epochs=1, stages.*.epochs=1, defaults.x=...")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved recipe and the stage plan")
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # set by deepspeed
    args = parser.parse_args(argv)
    try:
        recipe = load_recipe(args.recipe, args.set, base=args.base)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        from bloomberg_style.sft.chain import plan

        print(recipe.to_yaml())
        for name, out, done in plan(recipe):
            print(f"stage {name:<20} -> {out}  {'complete (skipped)' if done else 'to run'}")
        return 0
    from bloomberg_style.config import ConfigError
    from bloomberg_style.sft.chain import run_recipe

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


if __name__ == "__main__":
    sys.exit(main())
