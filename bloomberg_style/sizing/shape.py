"""Model shape from depth: Levine et al. 2020's depth-width rule, rounded for the hardware.

Levine et al. ("The depth-to-width interplay in self-attention") fit the width that uses
depth best: hidden = exp(5.039) * exp(0.0555 * layers), 7,510 at 70 layers.

Rounding rule: the hidden size must split into whole heads and be a multiple of 128 (tensor
cores and sharding like multiples of 128). With a fixed head size (default 192, the paper's)
the hidden size is the multiple of lcm(128, head_size) = 384 nearest to the rule, and
heads = hidden / head_size: 7,510 -> 7,680 = 40 x 192 (7,296 is 214 away, 7,680 only 170).
With a fixed head count instead the step is lcm(128, heads): 40 heads -> 640 -> 7,680 again.
Parameters come from ModelConfig.num_parameters(), the model code's own count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bloomberg_style.model.config import ModelConfig

LEVINE_LOG_SCALE = 5.039
LEVINE_DEPTH_RATE = 0.0555
HIDDEN_MULTIPLE = 128


def levine_width(layers: int) -> float:
    """Depth-width rule: the hidden size Levine et al. find best for `layers` layers."""
    return math.exp(LEVINE_LOG_SCALE) * math.exp(LEVINE_DEPTH_RATE * layers)


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    vocab_size: int
    seq_len: int
    rule_width: float  # levine_width(layers) before rounding

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def ffn(self) -> int:
        return 4 * self.hidden

    @property
    def params(self) -> int:
        return self.model_config().num_parameters()

    def model_config(self) -> ModelConfig:
        return ModelConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden,
            num_layers=self.layers,
            num_heads=self.heads,
            max_seq_len=self.seq_len,
        )


def shape_for_layers(
    layers: int,
    *,
    vocab_size: int = 131072,
    seq_len: int = 2048,
    head_dim: int = 192,
    heads: int | None = None,
) -> Shape:
    """Round levine_width(layers) to whole heads (fixed head_dim, or fixed heads) and a multiple of 128."""
    width = levine_width(layers)
    step = math.lcm(HIDDEN_MULTIPLE, heads if heads is not None else head_dim)
    hidden = max(step, step * math.floor(width / step + 0.5))
    return Shape(
        layers, hidden, heads if heads is not None else hidden // head_dim, vocab_size, seq_len, width
    )


def search_shape(
    target_params: float, *, max_params: float | None = None, max_layers: int = 256, **shape_kwargs
) -> Shape:
    """Layer count whose rounded shape is nearest target_params (in log), at most max_params."""
    best: Shape | None = None
    for layers in range(1, max_layers + 1):
        shape = shape_for_layers(layers, **shape_kwargs)
        if max_params is not None and shape.params > max_params:
            continue
        if best is None or abs(math.log(shape.params / target_params)) < abs(
            math.log(best.params / target_params)
        ):
            best = shape
    if best is None:
        smallest = shape_for_layers(1, **shape_kwargs)
        raise ValueError(
            f"no model shape has at most {max_params:,.0f} parameters: the smallest "
            f"(1 layer, hidden {smallest.hidden}, vocab {smallest.vocab_size:,}) has {smallest.params:,}"
        )
    return best
