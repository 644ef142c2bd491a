"""Tokens per second, TFLOP/s per device and MFU of the training steps themselves.

Only time spent inside `measure()` counts, so an evaluation, a checkpoint or a rollback
between two logs does not lower the speed reported; `take()` reads a log interval's
window and starts the next, the one place the meter is reset.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from bloomberg_style.sizing.flops import achieved_tflops


class ThroughputMeter:
    def __init__(self, model_flops_per_token: float, hardware_flops_per_token: float, world_size: int,
                 peak_tflops: float | None):  # fmt: skip
        self.model_flops_per_token = model_flops_per_token  # for MFU
        self.hardware_flops_per_token = hardware_flops_per_token  # recompute counted (paper's 102 TFLOP/s)
        self.world_size = world_size
        self.peak_tflops = peak_tflops
        self.tokens, self.seconds = 0, 0.0

    @contextmanager
    def measure(self, tokens: int) -> Iterator[None]:
        """Time one step that trains on `tokens` tokens (all ranks together)."""
        start = time.perf_counter()
        yield
        self.seconds += time.perf_counter() - start
        self.tokens += tokens

    def take(self) -> dict[str, float]:
        """The window's rates; the next window starts empty."""
        tokens, seconds = self.tokens, max(self.seconds, 1e-9)
        self.tokens, self.seconds = 0, 0.0
        rates = {
            "tokens_per_s": tokens / seconds,
            "tflops_per_device": achieved_tflops(
                self.hardware_flops_per_token, tokens, seconds, self.world_size
            ),
        }
        if self.peak_tflops:
            model = achieved_tflops(self.model_flops_per_token, tokens, seconds, self.world_size)
            rates["mfu"] = model / self.peak_tflops
        return rates
