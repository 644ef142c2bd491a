"""Size a run before spending the GPU budget (BloombergGPT section 3.2).

    python launch/scaling_law.py            # the paper's inputs: 1.3M A100-40GB hours, 708B tokens
    python launch/scaling_law.py --gpu-hours 2e5 --gpu h100-sxm --mfu 0.4 \\
        --tokens legal=120e9 --tokens web=900e9 --min-share legal=0.3 --epochs legal=2 --json

Prints the budget, compute-optimal sizes (Chinchilla approaches 1-3, Kaplan), the data-limited
choice, the depth-width shape, steps/days and memory per GPU. See docs/scaling_law.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bloomberg_style.sizing import (  # noqa: E402
    ACCELERATORS,
    APPROACHES,
    SizingInputs,
    format_report,
    parse_batch_ramp,
    result_to_dict,
    run_sizing,
)


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


def build_parser() -> argparse.ArgumentParser:
    defaults = SizingInputs()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("compute budget")
    g.add_argument("--gpu-hours", type=float, default=defaults.gpu_hours, help="GPU-hours to spend (1.3e6)")
    g.add_argument("--gpu", default=defaults.gpu, help=f"accelerator: {', '.join(ACCELERATORS)} (a100-40gb)")
    rate = g.add_mutually_exclusive_group()
    rate.add_argument(
        "--tflops",
        type=float,
        help="hardware TFLOP/s per GPU, recompute counted "
        "(the paper assumed 100); default: 100/312 of the GPU's peak",
    )
    rate.add_argument("--hfu", type=float, help="hardware FLOPs utilisation: --tflops as a fraction of peak")
    rate.add_argument("--mfu", type=float, help="model FLOPs utilisation (6N per token, no recompute)")
    g.add_argument(
        "--recompute-factor",
        type=float,
        default=defaults.recompute_factor,
        help="model FLOPs / hardware FLOPs: 0.75 = 6N/8N with activation checkpointing",
    )
    g.add_argument(
        "--buffer",
        type=float,
        default=defaults.buffer,
        help="share of the budget held back for failures and restarts (0.3)",
    )
    g = p.add_argument_group("data")
    g.add_argument(
        "--tokens",
        action="append",
        metavar="NAME=COUNT",
        help="tokens available per source, repeatable (financial=363e9 public=345e9)",
    )
    g.add_argument(
        "--min-share",
        action="append",
        metavar="NAME=FRACTION",
        help="minimum share of a source in the mix, repeatable (financial=0.5 with the "
        "default sources, none when --tokens is given)",
    )
    g.add_argument(
        "--epochs",
        action="append",
        metavar="N|NAME=N",
        help="passes allowed over the data, or over one source (1)",
    )
    g.add_argument(
        "--approach",
        default=defaults.approach,
        choices=list(APPROACHES),
        help="method that sets the target size (1)",
    )
    g.add_argument(
        "--min-tokens-per-param",
        type=float,
        default=defaults.min_tokens_per_param,
        help="never plan a model that sees fewer tokens per parameter (1)",
    )
    g = p.add_argument_group("shape")
    g.add_argument("--layers", type=int, help="fix the depth; default: search layer counts for the target")
    g.add_argument("--head-dim", type=int, default=defaults.head_dim, help="head size (192, the paper's)")
    g.add_argument("--heads", type=int, help="fix the head count instead of the head size")
    g.add_argument("--vocab-size", type=int, default=defaults.vocab_size, help="vocabulary (131072)")
    g.add_argument("--seq-len", type=int, default=defaults.seq_len, help="sequence length (2048)")
    g = p.add_argument_group("plan")
    g.add_argument("--gpus", type=int, default=defaults.gpus, help="GPUs in the run (512)")
    g.add_argument(
        "--batch-ramp",
        default="1024:7200,2048",
        help="global batch in sequences: SEQS:STEPS,...,SEQS (1024:7200,2048)",
    )
    g.add_argument("--steps", type=int, help="steps to plan; default: the steps that see the planned tokens")
    g.add_argument(
        "--plan-tflops",
        type=float,
        help="hardware TFLOP/s per GPU for the time plan (e.g. a measured 102); default: budget rate",
    )
    g.add_argument(
        "--attention-flops",
        action="store_true",
        help="count attention-score FLOPs per token (the paper's 8N count does not)",
    )
    g = p.add_argument_group("memory")
    g.add_argument("--zero-stage", type=int, default=defaults.zero_stage, choices=[0, 1, 2, 3])
    g.add_argument(
        "--shard-group",
        type=int,
        default=defaults.shard_group,
        help="GPUs the ZeRO states are sharded over (MiCS; 128 = the paper's 128 x 4 replicas)",
    )
    g.add_argument("--micro-batch", type=int, default=defaults.micro_batch, help="sequences per GPU pass (2)")
    g.add_argument("--no-checkpointing", action="store_true", help="plan without activation checkpointing")
    g.add_argument(
        "--memory-headroom",
        type=float,
        default=defaults.memory_headroom,
        help="share of GPU memory kept free for the CUDA context and fragmentation (0.1)",
    )
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print JSON instead of the table")
    g.add_argument(
        "--plot", metavar="FILE.png", help="write optimal params/tokens vs FLOPs with known models"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        tokens = _named(args.tokens, "--tokens")
        min_share = _named(args.min_share, "--min-share")
        defaults = SizingInputs()
        inputs = SizingInputs(
            gpu_hours=args.gpu_hours,
            gpu=args.gpu,
            tflops=args.tflops,
            hfu=args.hfu,
            mfu=args.mfu,
            recompute_factor=args.recompute_factor,
            buffer=args.buffer,
            tokens=tokens or defaults.tokens,
            min_share=min_share if (min_share or tokens) else defaults.min_share,
            epochs=_epochs(args.epochs),
            approach=args.approach,
            min_tokens_per_param=args.min_tokens_per_param,
            layers=args.layers,
            head_dim=args.head_dim,
            heads=args.heads,
            vocab_size=args.vocab_size,
            seq_len=args.seq_len,
            gpus=args.gpus,
            batch_ramp=parse_batch_ramp(args.batch_ramp),
            steps=args.steps,
            plan_tflops=args.plan_tflops,
            attention_flops=args.attention_flops,
            zero_stage=args.zero_stage,
            shard_group=args.shard_group,
            micro_batch=args.micro_batch,
            checkpointing=not args.no_checkpointing,
            memory_headroom=args.memory_headroom,
        )
        result = run_sizing(inputs)
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
