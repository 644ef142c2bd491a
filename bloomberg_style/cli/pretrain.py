"""`bloomberg-style pretrain` (and launch/pretrain.py): pretrain a BLOOM model with DeepSpeed.

bloomberg-style pretrain                                 # the CPU demo
deepspeed --num_gpus 2 launch/pretrain.py --config configs/pretrain/NAME.yaml
bloomberg-style pretrain --config ... --set train.steps=100 --dry-run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from bloomberg_style.cli.errors import command
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
        "--dry-run",
        action="store_true",
        help="check everything that needs no process group (model preset, batch divisibility at the "
        "world size, shards and their tokenizer, deepspeed_json), print the resolved config and "
        "batch arithmetic",
    )
    parser.add_argument(
        "--world-size",
        type=int,
        default=None,
        help="ranks the --dry-run checks batch divisibility and shard presence for (default: $WORLD_SIZE; "
        "without either, a plan: one rank, absent shards only warn)",
    )
    parser.add_argument(
        "--simulate-controller",
        metavar="CURVE.csv",
        help="feed a validation curve (columns step,loss) through the configured controller without "
        "training; prints one JSON decision per line",
    )
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # set by deepspeed
    return parser


def world_size_of(flag: int | None) -> int | None:
    """--world-size, else $WORLD_SIZE (set by torchrun / deepspeed), else None (not configured)."""
    if flag is not None:
        value, where = flag, "--world-size"
    else:
        raw, where = os.environ.get("WORLD_SIZE"), "WORLD_SIZE"
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{where}={raw!r} is not an integer") from None
    if value < 1:
        raise ConfigError(f"{where} must be >= 1, got {value}")
    return value


def dry_run_checks(cfg: RunConfig, world_size: int | None, warn=None) -> list[str]:
    """Every check a run makes before its process group: ConfigError (or ShardError) naming the
    field or file on the first failure; else one line per check that passed.

    With a world size (--world-size or WORLD_SIZE) this is the pre-flight check of the machine
    that will run: the batch must divide at that size and every shard must be here. Without
    one it is a plan made elsewhere (the paper config on a laptop): divisibility is checked
    for one rank only and absent shards are warnings; files that are here are always checked.
    """
    warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
    from bloomberg_style.data.build import check_run_shards, tokenizer_exists
    from bloomberg_style.data.parts import parts_ready
    from bloomberg_style.data.prepare import check_inline_preparation
    from bloomberg_style.training.deepspeed_config import build_deepspeed_config
    from bloomberg_style.training.pretrain import build_model_config

    done = []
    have_tokenizer = tokenizer_exists(cfg.data.tokenizer)
    if have_tokenizer:  # ours or a Hugging Face tokenizer folder (continued pretraining)
        from bloomberg_style.data.shards import load_run_tokenizer

        vocab = load_run_tokenizer(Path(cfg.data.tokenizer)).vocab_size  # truncated: names the file
    else:
        vocab = cfg.data.tokenizer_vocab_size
    init_ref = None
    if cfg.model.init_from:  # continued pretraining: the shape is the starting model's
        from bloomberg_style.training.init_from import resolve_init_from

        init_ref = resolve_init_from(cfg.model.init_from)  # ConfigError naming model.init_from
    model = build_model_config(cfg, vocab, init_ref)  # unknown preset or bad overrides: ConfigError
    source = f"init_from {cfg.model.init_from}" if init_ref is not None else f"preset {cfg.model.preset!r}"
    done.append(f"model: {source} builds ({model.num_layers} layers, vocab {model.vocab_size})")
    if world_size is None:
        planned = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, shard_group_size=0))
        ds = build_deepspeed_config(planned, 1, "cuda")  # micro-batch divisibility, deepspeed_json
        where = "1 rank (give --world-size N or WORLD_SIZE to check at the run's size)"
    else:
        ds = build_deepspeed_config(cfg, world_size, "cuda")  # divisibility, shard groups, deepspeed_json
        where = f"{world_size} ranks"
    done.append(
        f"batch: {ds['train_batch_size']} sequences = {cfg.train.micro_batch_size} x {where} x "
        f"{ds['gradient_accumulation_steps']} accumulation"
        + (f"; {cfg.train.deepspeed_json} merges cleanly" if cfg.train.deepspeed_json else "")
    )
    check_inline_preparation(cfg.data, world_size or 1)
    missing = [d for d in cfg.data.domains if not parts_ready([d.prefix, *d.prefixes])]
    for d in missing:
        if not d.inputs:
            message = (
                f"data.domains[{d.name}].prefix: no token shard at {d.prefix} (.bin/.idx, a manifest or a "
                "glob match) and no inputs to build it from; run launch/prepare_data.py"
            )
            if world_size is not None:
                raise ConfigError(message)
            warn(f"{message} (an error with --world-size / WORLD_SIZE: the run would stop there)")
    if not have_tokenizer and len(missing) != len(cfg.data.domains):  # shards here, made with what?
        raise ConfigError(
            f"data.tokenizer: no tokenizer.json in {cfg.data.tokenizer}, but shards exist: they were made "
            "with some other tokenizer; point data.tokenizer at it"
        )
    if have_tokenizer:
        check_run_shards(cfg.data, log=warn)
        done.append(f"shards that are here: whole and made with {cfg.data.tokenizer}")
    built = [d.name for d in missing if d.inputs]
    if built:
        done.append(f"shards: {', '.join(built)} will be built from their inputs")
    return done


def dry_run(cfg: RunConfig, world_size: int | None = None) -> None:
    checks = dry_run_checks(cfg, world_size)
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
    for line in checks:
        print(f"checked {line}")


@command
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    cfg = RunConfig.load(args.config, args.set)  # ConfigError: exit 2 through @command
    if args.simulate_controller:
        from bloomberg_style.controllers.simulate import main as simulate_main

        return simulate_main(cfg, args.simulate_controller)
    if args.dry_run:
        dry_run(cfg, world_size_of(args.world_size))
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
