"""Shape and numerics of the BLOOM decoder, with named presets.

One dataclass holds everything the model needs; presets give the CPU demo
shapes, a size ladder for scaling studies and BloombergGPT-50B itself.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from bloomberg_style.config import ConfigError, RunConfig

# "auto": on CUDA flash-attention 2 where it runs (bf16/fp16, flash_attn installed), else flex,
# else sdpa; on CPU sdpa (measured fastest, docs/model.md). model/attention.py `choose` says why.
ATTENTION_IMPLS = ("auto", "eager", "sdpa", "flash", "flex")
CHECKPOINT_IMPLS = ("torch", "deepspeed")


@dataclass
class ModelConfig:
    """BLOOM decoder shape (pre-LN, ALiBi, tied embeddings, GELU-tanh) and how to run it."""

    vocab_size: int = 8192
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 8
    # Training length; information only: ALiBi has no position table, so any length runs.
    max_seq_len: int = 256
    layer_norm_eps: float = 1e-5
    # None -> sqrt(1 / (3 * hidden)), the paper's init (0.006588 at hidden 7680).
    init_std: float | None = None
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    # "eager": matmul + ALiBi + FP32 softmax, the paper's numerics spelled out (the reference);
    # "sdpa": torch's fused scaled_dot_product_attention with ALiBi as a float mask;
    # "flash": flash-attention 2 with alibi_slopes (CUDA; falls back to sdpa with a warning);
    # "flex": compiled torch flex_attention, ALiBi score_mod + causal block mask (no attention
    # dropout: falls back to sdpa with a warning); "auto": see ATTENTION_IMPLS.
    # All agree with eager within dtype tolerance.
    attention_impl: str = "auto"
    # Eager path: scale q.k by 1/layer_number in the compute dtype and undo it in FP32 (Megatron/BLOOM).
    query_key_layer_scaling: bool = True
    # Recompute each block in the backward pass instead of storing its activations.
    activation_checkpointing: bool = False
    # "torch": torch.utils.checkpoint (non-reentrant); "deepspeed": deepspeed.checkpointing.checkpoint
    # (honours deepspeed.checkpointing.configure: partitioned or CPU-offloaded activations).
    activation_checkpointing_impl: str = "torch"
    # torch.compile each transformer block (fuses LayerNorm, GELU, bias adds; one graph for all layers).
    compile_blocks: bool = False
    # torch.compile backend for compile_blocks: "inductor" (fused kernels), or e.g. "aot_eager" (no codegen).
    compile_backend: str = "inductor"

    def __post_init__(self) -> None:
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def ffn_hidden_size(self) -> int:
        return 4 * self.hidden_size

    @property
    def initializer_std(self) -> float:
        """The std actually used: init_std, or the paper's sqrt(1/(3*hidden))."""
        return self.init_std if self.init_std is not None else math.sqrt(1.0 / (3.0 * self.hidden_size))

    def num_parameters(self) -> int:
        """Closed form: L*(12D^2 + 13D) + V*D + 4D (tied head counted once)."""
        d, layers, v = self.hidden_size, self.num_layers, self.vocab_size
        return layers * (12 * d * d + 13 * d) + v * d + 4 * d

    def validate(self) -> ModelConfig:
        """Raise ValueError naming the field on bad values; return self for chaining."""
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "max_seq_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_heads != 0:
            raise ValueError(
                f"ModelConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"ModelConfig.num_heads ({self.num_heads})"
            )
        for name in ("hidden_dropout", "attention_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"ModelConfig.{name} must be a number in [0, 1), got {value!r}")
        if isinstance(self.layer_norm_eps, bool) or not isinstance(self.layer_norm_eps, (int, float)):
            raise ValueError(f"ModelConfig.layer_norm_eps must be a number, got {self.layer_norm_eps!r}")
        if self.layer_norm_eps <= 0:
            raise ValueError(f"ModelConfig.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if self.init_std is not None and (
            isinstance(self.init_std, bool)
            or not isinstance(self.init_std, (int, float))
            or self.init_std <= 0
        ):
            raise ValueError(f"ModelConfig.init_std must be None or a positive number, got {self.init_std!r}")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ValueError(
                f"ModelConfig.attention_impl must be one of {ATTENTION_IMPLS}, got {self.attention_impl!r}"
            )
        if self.activation_checkpointing_impl not in CHECKPOINT_IMPLS:
            raise ValueError(
                f"ModelConfig.activation_checkpointing_impl must be one of {CHECKPOINT_IMPLS}, "
                f"got {self.activation_checkpointing_impl!r}"
            )
        if not isinstance(self.compile_backend, str) or not self.compile_backend:
            raise ValueError(
                f"ModelConfig.compile_backend must be a backend name, got {self.compile_backend!r}"
            )
        for name in ("query_key_layer_scaling", "activation_checkpointing", "compile_blocks"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"ModelConfig.{name} must be true or false, got {getattr(self, name)!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a mapping (YAML/JSON); unknown keys are an error, not silently dropped."""
        if not isinstance(data, dict):
            raise ValueError(f"ModelConfig.from_dict expects a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ValueError(f"unknown ModelConfig key {key!r}; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_run(cls, cfg: RunConfig, vocab_size: int) -> ModelConfig:
        """The run's model: `model.preset` with `model.overrides`, the tokenizer's vocabulary
        padded to `model.pad_vocab_to`, `data.seq_len` and `train.activation_checkpointing`."""
        m = cfg.model
        try:
            return cls.preset(
                m.preset,
                **m.overrides.given(),
                vocab_size=padded_vocab(vocab_size, m.pad_vocab_to),
                max_seq_len=cfg.data.seq_len,
                activation_checkpointing=cfg.train.activation_checkpointing,
            )
        except ValueError as exc:
            raise ConfigError(f"model: {exc}") from exc

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """A named shape, with field overrides (e.g. vocab_size from the tokenizer)."""
        if name not in PRESETS:
            raise ValueError(f"unknown model preset {name!r}; known presets: {sorted(PRESETS)}")
        return cls.from_dict({**PRESETS[name], **overrides})


def padded_vocab(vocab_size: int, multiple: int) -> int:
    """Embedding rows: the tokenizer's size rounded up to a multiple (tensor-core friendly)."""
    return -(-vocab_size // multiple) * multiple


def _ladder(layers: int, hidden: int, heads: int) -> dict[str, Any]:
    return dict(vocab_size=131072, hidden_size=hidden, num_layers=layers, num_heads=heads, max_seq_len=2048)


# Vocabulary 2^17 is the paper's tokenizer; CPU presets default to 8192 and are
# normally overridden with the demo tokenizer's vocab_size.
PRESETS: dict[str, dict[str, Any]] = {
    # CPU demo: trains at a few thousand tokens/s on 2 cores.
    "tiny": dict(vocab_size=8192, hidden_size=256, num_layers=4, num_heads=8, max_seq_len=256),
    # Same scale with 6 heads: exercises the non-power-of-two ALiBi slopes, like 40 heads at 50B.
    "tiny-6h": dict(vocab_size=8192, hidden_size=192, num_layers=4, num_heads=6, max_seq_len=256),
    "small": dict(vocab_size=8192, hidden_size=384, num_layers=6, num_heads=6, max_seq_len=512),
    # Scaling ladder: hidden = exp(5.039) * exp(0.0555 * layers) (Levine et al. 2020, as the paper
    # shaped its 50B), rounded to a multiple of 128 and of the head size; layers chosen so the
    # parameter count (2^17 vocabulary included) is nearest the name. `sizing/ladder.py` derives these
    # and its test checks that the table below is what the rule gives.
    "ladder-125m": _ladder(20, 512, 8),  # 130.2M, head 64
    "ladder-350m": _ladder(30, 768, 12),  # 313.3M, head 64
    "ladder-760m": _ladder(37, 1152, 18),  # 740.8M, head 64
    "ladder-1.3b": _ladder(41, 1536, 24),  # 1.363B, head 64
    "ladder-2.7b": _ladder(47, 2048, 16),  # 2.635B, head 128
    "ladder-6.7b": _ladder(54, 3072, 24),  # 6.520B, head 128
    "ladder-13b": _ladder(59, 4096, 32),  # 12.418B, head 128
    # BloombergGPT (arXiv 2303.17564): 70 layers, 40 heads x 192, 50,558,868,480 parameters.
    "bloomberggpt-50b": _ladder(70, 7680, 40),
}
