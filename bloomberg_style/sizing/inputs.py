"""Everything the planner takes, defaulting to BloombergGPT's inputs, checked before any work."""

from __future__ import annotations

from dataclasses import dataclass, field

from .accelerators import get_accelerator
from .budget import ComputeBudget, check_number, compute_budget
from .chinchilla import APPROACHES
from .data_limit import DataMix, data_mix
from .plan import PAPER_RAMP, BatchPhase

# BloombergGPT's data: FinPile 363B tokens, public 345B (The Pile, C4, Wikipedia).
PAPER_TOKENS = {"financial": 363e9, "public": 345e9}
PAPER_MIN_SHARE = {"financial": 0.5}

# Upper bounds, far past any real run but below where the arithmetic overflows (1e300 GPU-hours
# gave inf FLOPs and nan sizes; 100,000 layers overflowed the shape search): past them the
# scaling-law fits would be extrapolated by many orders of magnitude anyway.
MAX_GPU_HOURS = 1e10  # ~1.1 million GPU-years; BloombergGPT used 1.3e6
MAX_TOKENS = 1e16  # per source; FinPile is 3.6e11
MAX_INT = {
    "layers": 1_000,  # the deepest dense LLMs have ~100-200
    "heads": 4_096,
    "head_dim": 4_096,
    "vocab_size": 1 << 24,
    "seq_len": 1 << 20,
    "gpus": 10_000_000,
    "shard_group": 10_000_000,
    "micro_batch": 1 << 16,
    "steps": 10**10,
}


@dataclass
class SizingInputs:
    # Budget
    gpu_hours: float = 1.3e6
    gpu: str = "a100-40gb"
    tflops: float | None = None  # hardware TFLOP/s per GPU; default: the paper's 100/312 of peak
    hfu: float | None = None
    mfu: float | None = None
    recompute_factor: float = 0.75
    buffer: float = 0.3
    # Data
    tokens: dict[str, float] = field(default_factory=lambda: dict(PAPER_TOKENS))
    min_share: dict[str, float] = field(default_factory=lambda: dict(PAPER_MIN_SHARE))
    epochs: dict[str, float] | float = 1.0
    approach: str = "1"
    min_tokens_per_param: float = 1.0
    # Shape
    layers: int | None = None  # None: search layer counts for the target size
    head_dim: int = 192
    heads: int | None = None  # fixes the head count instead of the head size
    vocab_size: int = 131072
    seq_len: int = 2048
    # Plan
    gpus: int = 512
    batch_ramp: tuple[BatchPhase, ...] = PAPER_RAMP
    steps: int | None = None  # None: the steps that see the planned tokens
    plan_tflops: float | None = None  # rate for the time plan; None: the budget's rate
    attention_flops: bool = False  # the paper's 8N count leaves attention out
    # Memory
    zero_stage: int = 3
    shard_group: int = 128
    micro_batch: int = 2
    checkpointing: bool = True
    memory_headroom: float = 0.1

    def validate(self) -> tuple[ComputeBudget, DataMix]:
        """Check every field (ValueError naming it); return the budget and the data mix."""
        budget = compute_budget(
            self.gpu_hours,
            self.gpu,
            tflops=self.tflops,
            hfu=self.hfu,
            mfu=self.mfu,
            recompute_factor=self.recompute_factor,
            buffer=self.buffer,
        )
        check_number("gpu_hours", self.gpu_hours, high=MAX_GPU_HOURS)  # after compute_budget's own checks
        for name, count in (self.tokens or {}).items():
            check_number(f"tokens[{name}]", count, low_open=False, high=MAX_TOKENS)
        mix = data_mix(self.tokens, self.min_share, self.epochs)
        if self.approach not in APPROACHES:
            raise ValueError(f"unknown approach {self.approach!r}; known approaches: {', '.join(APPROACHES)}")
        check_number("min_tokens_per_param", self.min_tokens_per_param)
        ints = {
            "head_dim": self.head_dim,
            "vocab_size": self.vocab_size,
            "seq_len": self.seq_len,
            "gpus": self.gpus,
            "shard_group": self.shard_group,
            "micro_batch": self.micro_batch,
            "layers": self.layers,
            "heads": self.heads,
            "steps": self.steps,
        }
        for name, value in ints.items():
            if value is None and name in ("layers", "heads", "steps"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            if value > MAX_INT[name]:
                raise ValueError(f"{name} must be <= {MAX_INT[name]:,} (a sanity cap), got {value!r}")
        if self.zero_stage not in (0, 1, 2, 3):
            raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {self.zero_stage!r}")
        if self.gpus % self.shard_group:
            raise ValueError(f"shard_group ({self.shard_group}) must divide gpus ({self.gpus})")
        if self.plan_tflops is not None:
            peak = get_accelerator(self.gpu).peak_bf16_tflops
            if check_number("plan_tflops", self.plan_tflops) > peak:
                raise ValueError(
                    f"plan_tflops={self.plan_tflops:g} is above the {self.gpu} dense BF16 peak of "
                    f"{peak:g} TFLOP/s"
                )
        check_number("memory_headroom", self.memory_headroom, low_open=False, high=1.0, high_open=True)
        if (
            not self.batch_ramp
            or any(p.sequences <= 0 or (p.steps is not None and p.steps <= 0) for p in self.batch_ramp)
            or self.batch_ramp[-1].steps is not None
        ):
            raise ValueError(
                f"batch_ramp must be phases with sequences, steps > 0 and an open last phase, "
                f"got {self.batch_ramp!r}"
            )
        return budget, mix
