"""`bloomberg-style scaling-law` (and launch/scaling_law.py): size a run before spending the GPU
budget (BloombergGPT section 3.2).

    bloomberg-style scaling-law        # the paper's inputs: 1.3M A100-40GB hours, 708B tokens
    bloomberg-style scaling-law --gpu-hours 2e5 --gpu h100-sxm --mfu 0.4 \\
        --tokens legal=120e9 --tokens web=900e9 --min-share legal=0.3 --epochs legal=2 --json

Prints the budget, compute-optimal sizes (Chinchilla approaches 1-3, Kaplan), the data-limited
choice, the depth-width shape, steps/days and memory per GPU. See docs/scaling_law.md.
Every flag is a field of SizingInputs (names, types and defaults come from it).
"""

from __future__ import annotations

import argparse
import json
import sys

from bloomberg_style.cli.errors import command
from bloomberg_style.configlib import ConfigError, add_flags, from_flags, load_config, load_yaml
from bloomberg_style.sizing import (
    ACCELERATORS,
    APPROACHES,
    SizingInputs,
    format_report,
    parse_batch_ramp,
    result_to_dict,
    run_sizing,
)

HELP = {
    "gpu_hours": "GPU-hours to spend (1.3e6)",
    "gpu": f"accelerator: {', '.join(ACCELERATORS)} (a100-40gb)",
    "tflops": "hardware TFLOP/s per GPU, recompute counted (the paper assumed 100); "
    "default: 100/312 of the GPU's peak",
    "hfu": "hardware FLOPs utilisation: --tflops as a fraction of peak",
    "mfu": "model FLOPs utilisation (6N per token, no recompute)",
    "recompute_factor": "model FLOPs / hardware FLOPs: 0.75 = 6N/8N with activation checkpointing",
    "buffer": "share of the budget held back for failures and restarts (0.3)",
    "tokens": "tokens available per source, repeatable (financial=363e9 public=345e9)",
    "min_share": "minimum share of a source in the mix, repeatable (financial=0.5 with the "
    "default sources, none when --tokens is given)",
    "epochs": "passes allowed over the data, or over one source (1)",
    "approach": "method that sets the target size (1)",
    "min_tokens_per_param": "never plan a model that sees fewer tokens per parameter (1)",
    "layers": "fix the depth; default: search layer counts for the target",
    "head_dim": "head size (192, the paper's)",
    "heads": "fix the head count instead of the head size",
    "vocab_size": "vocabulary (131072)",
    "seq_len": "sequence length (2048)",
    "gpus": "GPUs in the run (512)",
    "batch_ramp": "global batch in sequences: SEQS:STEPS,...,SEQS (1024:7200,2048)",
    "steps": "steps to plan; default: the steps that see the planned tokens",
    "plan_tflops": "hardware TFLOP/s per GPU for the time plan (e.g. a measured 102); default: budget rate",
    "attention_flops": "count attention-score FLOPs per token (the paper's 8N count does not)",
    "zero_stage": "ZeRO stage (3)",
    "shard_group": "GPUs the ZeRO states are sharded over (MiCS; 128 = the paper's 128 x 4 replicas)",
    "micro_batch": "sequences per GPU pass (2)",
    "checkpointing": "plan without activation checkpointing",
    "memory_headroom": "share of GPU memory kept free for the CUDA context and fragmentation (0.1)",
}
GROUPS = {
    "compute budget": ["gpu_hours", "gpu", "tflops", "hfu", "mfu", "recompute_factor", "buffer"],
    "data": ["tokens", "min_share", "epochs", "approach", "min_tokens_per_param"],
    "shape": ["layers", "head_dim", "heads", "vocab_size", "seq_len"],
    "plan": ["gpus", "batch_ramp", "steps", "plan_tflops", "attention_flops"],
    "memory": ["zero_stage", "shard_group", "micro_batch", "checkpointing", "memory_headroom"],
}
SPECIAL = {
    "tokens": {"action": "append", "default": None, "metavar": "NAME=COUNT"},
    "min_share": {"action": "append", "default": None, "metavar": "NAME=FRACTION"},
    "epochs": {"action": "append", "default": None, "metavar": "N|NAME=N", "type": str},
    "approach": {"choices": list(APPROACHES)},
    "batch_ramp": {"default": None, "type": str},
    "zero_stage": {"choices": [0, 1, 2, 3]},
    "checkpointing": {"flag": "--no-checkpointing"},
}
RATE = ("tflops", "hfu", "mfu")  # one of them at most
SPECIAL_LISTS = ("tokens", "min_share", "epochs", "batch_ramp")  # parsed in inputs_from_args


def _named(values: list[str] | None, flag: str) -> dict[str, float]:
    """['financial=363e9', ...] -> {'financial': 3.63e11}; bad items name the flag."""
    out: dict[str, float] = {}
    for item in values or []:
        name, eq, number = item.partition("=")
        try:
            if not (eq and name.strip()):
                raise ValueError
            out[name.strip()] = float(number)
        except ValueError:
            raise ValueError(f"{flag} expects NAME=NUMBER, got {item!r}") from None
    return out


def _epochs(values: list[str] | None) -> dict[str, float] | float:
    """--epochs 2 (every source) or --epochs financial=2 (one source), repeatable."""
    if not values:
        return 1.0
    plain = [v for v in values if "=" not in v]
    if plain and len(plain) == len(values) == 1:
        try:
            return float(plain[0])
        except ValueError:
            raise ValueError(f"--epochs expects a number or NAME=NUMBER, got {plain[0]!r}") from None
    if plain:
        raise ValueError(f"--epochs: give one plain number or only NAME=NUMBER items, got {values}")
    return _named(values, "--epochs")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="inputs from a YAML of SizingInputs keys (batch_ramp: [{sequences: 1024, steps: 7200}, ...]); "
        "flags given as well win",
    )
    for title, names in GROUPS.items():
        group = p.add_argument_group(title)
        rate = group.add_mutually_exclusive_group() if title == "compute budget" else None
        special = {n: {**SPECIAL.get(n, {}), "group": rate if n in RATE else group} for n in names}
        add_flags(p, SizingInputs, HELP, only=names, special=special)
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print JSON instead of the table")
    g.add_argument(
        "--plot", metavar="FILE.png", help="write optimal params/tokens vs FLOPs with known models"
    )
    return p


def inputs_from_args(args: argparse.Namespace, base: SizingInputs | None = None) -> SizingInputs:
    """The parsed flags as SizingInputs over `base` (the --config file, or the defaults);
    NAME=NUMBER lists and the ramp are parsed here."""
    base = base or SizingInputs()
    tokens = _named(args.tokens, "--tokens")
    min_share = _named(args.min_share, "--min-share")
    return from_flags(
        SizingInputs,
        args,
        tokens=tokens or base.tokens,
        min_share=min_share if (min_share or tokens) else base.min_share,
        epochs=_epochs(args.epochs) if args.epochs else base.epochs,
        batch_ramp=parse_batch_ramp(args.batch_ramp) if args.batch_ramp else base.batch_ramp,
    )


def parse(
    argv: list[str] | None, prog: str | None
) -> tuple[argparse.ArgumentParser, argparse.Namespace, SizingInputs]:
    """Flags over the --config file over the defaults: the file's values become the flags' defaults."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    base = SizingInputs()
    if args.config:
        keys = load_yaml(args.config, what="sizing inputs")[0]
        # As with --tokens: the paper's financial share belongs to the paper's sources.
        own_sources = ["min_share={}"] if "tokens" in keys and "min_share" not in keys else []
        base = load_config(SizingInputs, args.config, own_sources, what="sizing inputs")
        parser.set_defaults(**{k: getattr(base, k) for k in vars(args) if k in SizingInputs.__dataclass_fields__
                               and k not in SPECIAL_LISTS})  # fmt: skip
        args = parser.parse_args(argv)
    return parser, args, base


@command
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    try:
        parser, args, base = parse(argv, prog)
    except ConfigError as err:
        print(f"{prog or 'scaling_law'}: error: {err}", file=sys.stderr)
        return 2
    try:
        result = run_sizing(inputs_from_args(args, base))
        if args.plot:
            from bloomberg_style.sizing.plot import plot_scaling

            path = plot_scaling(result, args.plot)
    except ValueError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result_to_dict(result), indent=2) if args.json else format_report(result))
    if args.plot:
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
