"""The size ladder: the paper's depth-width rule, and a table of every preset.

BloombergGPT shaped its 50B model with Levine et al. (2020): the hidden size that uses
L layers best is D = exp(5.039) * exp(0.0555 * L) (7,510 at L = 70). Rounded to whole
heads and a multiple of 128 that gives 7,680 = 40 x 192. The ladder applies the same rule
at every size: for a target parameter count, take the depth whose rounded shape comes
nearest (in log), with a head size that grows with width as GPT-3's did (64 up to ~1.5k
wide, 128 up to ~4.6k, 192 beyond, the paper's).

    python -m bloomberg_style.sizing.ladder [--seq-len 2048]    # or launch/model_ladder.py

The rule itself (`levine_width`) lives in shape.py, which the planner uses with a fixed head
size; the presets it produced are written out in model/config.py, so the model needs no sizing code.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from bloomberg_style.model.config import PRESETS, ModelConfig

from .flops import flops_per_token
from .shape import HIDDEN_MULTIPLE, levine_width

PAPER_VOCAB = 131072
# Ladder rungs: preset name -> target parameters.
LADDER_TARGETS = {
    "ladder-125m": 125e6,
    "ladder-350m": 350e6,
    "ladder-760m": 760e6,
    "ladder-1.3b": 1.3e9,
    "ladder-2.7b": 2.7e9,
    "ladder-6.7b": 6.7e9,
    "ladder-13b": 13e9,
    "bloomberggpt-50b": 50e9,
}


def head_dim_for(width: float) -> int:
    """Head size for a width: 64 (GPT-3 up to 1.3B), 128 (GPT-3 6.7B/13B), 192 (BloombergGPT)."""
    if width < 1536:
        return 64
    return 128 if width < 4608 else 192


def rule_shape(layers: int, vocab_size: int = PAPER_VOCAB) -> ModelConfig:
    """The depth-width rule at `layers`: width rounded to a multiple of lcm(128, head size)."""
    if isinstance(layers, bool) or not isinstance(layers, int) or layers <= 0:
        raise ValueError(f"layers must be a positive integer, got {layers!r}")
    width = levine_width(layers)
    head_dim = head_dim_for(width)
    step = math.lcm(HIDDEN_MULTIPLE, head_dim)
    hidden = max(step, step * math.floor(width / step + 0.5))
    return ModelConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=hidden // head_dim,
        max_seq_len=2048,
    )


def shape_for_parameters(target: float, vocab_size: int = PAPER_VOCAB, max_layers: int = 128) -> ModelConfig:
    """The rule's shape whose parameter count is nearest `target` (in log)."""
    if not target > 0:
        raise ValueError(f"target parameters must be > 0, got {target!r}")
    shapes = [rule_shape(layers, vocab_size) for layers in range(1, max_layers + 1)]
    return min(shapes, key=lambda c: abs(math.log(c.num_parameters() / target)))


@dataclass(frozen=True)
class LadderRow:
    name: str
    layers: int
    hidden: int
    heads: int
    head_dim: int
    parameters: int  # counted on a meta-device model, not the closed form
    flops_per_token: float  # training (fwd + bwd), attention term included, no recompute
    flops_per_token_recompute: float  # with every layer recomputed (activation checkpointing)


def ladder_table(names: list[str] | None = None, seq_len: int = 2048) -> list[LadderRow]:
    """One row per preset (all of them by default), parameters counted on the meta device."""
    import torch

    from bloomberg_style.model.model import BloomForCausalLM

    rows = []
    for name in names or list(PRESETS):
        cfg = ModelConfig.preset(name)
        with torch.device("meta"):
            n = BloomForCausalLM(cfg).num_parameters()
        rows.append(
            LadderRow(
                name,
                cfg.num_layers,
                cfg.hidden_size,
                cfg.num_heads,
                cfg.head_dim,
                n,
                flops_per_token(cfg, n, seq_len),
                flops_per_token(cfg, n, seq_len, recompute=True),
            )
        )
    return rows


def format_table(rows: list[LadderRow], seq_len: int) -> str:
    head = (
        f"{'preset':<18}{'layers':>7}{'hidden':>8}{'heads':>7}{'head':>6}{'parameters':>17}"
        f"{'GFLOP/token':>13}{'w/ recompute':>14}"
    )
    lines = [f"training FLOPs per token at sequence {seq_len} (6N + 12*L*s*D; recompute 8N + 16*L*s*D)", head]
    for r in rows:
        lines.append(
            f"{r.name:<18}{r.layers:>7}{r.hidden:>8}{r.heads:>7}{r.head_dim:>6}{r.parameters:>17,}"
            f"{r.flops_per_token / 1e9:>13.2f}{r.flops_per_token_recompute / 1e9:>14.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the model presets: shape, parameters, FLOPs per token."
    )
    parser.add_argument("--seq-len", type=int, default=2048, help="sequence length for the attention FLOPs")
    parser.add_argument("--preset", action="append", help="only these presets (repeatable)")
    args = parser.parse_args(argv)
    if args.seq_len <= 0:
        parser.error(f"--seq-len must be positive, got {args.seq_len}")
    for name in args.preset or []:
        if name not in PRESETS:
            parser.error(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    print(format_table(ladder_table(args.preset, args.seq_len), args.seq_len))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
