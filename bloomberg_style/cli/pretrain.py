"""`bloomberg-style pretrain` (and launch/pretrain.py): pretrain a BLOOM model with DeepSpeed.

bloomberg-style pretrain                                 # the CPU demo
deepspeed --num_gpus 2 launch/pretrain.py --config configs/pretrain/NAME.yaml
bloomberg-style pretrain --config ... --set train.steps=100 --dry-run
"""

from __future__ import annotations

import argparse
import json
import sys

from bloomberg_style.config import ConfigError, RunConfig
from bloomberg_style.configlib import add_set_flag, packaged

DEMO_CONFIG = packaged("pretrain/demo.yaml")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Pretrain a BLOOM model with DeepSpeed.",
        # docs/troubleshooting.md#files-that-could-run-code-pickles
        epilog="Resuming a run unpickles DeepSpeed's optimizer states (torch.load weights_only=False): "
        "resume only run folders you or someone you trust wrote.",
    )
    parser.add_argument("--config", default=str(DEMO_CONFIG), help="run YAML (default: the CPU demo)")
    add_set_flag(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved config and batch arithmetic"
    )
    parser.add_argument(
        "--simulate-controller",
        metavar="CURVE.csv",
        help="feed a validation curve (columns step,loss) through the configured controller without "
        "training; prints one JSON decision per line",
    )
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # set by deepspeed
    return parser


def dry_run(cfg: RunConfig) -> None:
    print(cfg.to_yaml())
    t = cfg.train
    arithmetic = {
        "tokens_per_step": t.global_batch_size * cfg.data.seq_len,
        "total_tokens": t.steps * t.global_batch_size * cfg.data.seq_len,
        "config_hash": cfg.hash(),
    }
    print(json.dumps(arithmetic, indent=1))
    from bloomberg_style.training.eval_budget import describe

    print(describe(cfg))


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        cfg = RunConfig.load(args.config, args.set)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.simulate_controller:
        from bloomberg_style.controllers.simulate import main as simulate_main

        return simulate_main(cfg, args.simulate_controller)
    if args.dry_run:
        dry_run(cfg)
        return 0
    from bloomberg_style.evaluation.fewshot import TaskError
    from bloomberg_style.evaluation.in_loop import check_task_files, task_evaluation
    from bloomberg_style.training.pretrain import run_pretraining

    try:
        check_task_files(cfg.eval.tasks)  # a bad task file fails before any compute
        # The trainer (training/) cannot import evaluation/; the task scorer is passed in here.
        summary = run_pretraining(cfg, extra_evaluation=task_evaluation)
    except (ConfigError, TaskError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return int(summary.get("exit_code", 0))


if __name__ == "__main__":
    sys.exit(main())
