"""Which dataset sample the run reads at each global position.

The position advances by the global batch every step and is saved in checkpoints. Two
interventions change the mapping without touching the dataset: a *skip* (after a loss
spike the window that caused it is jumped over: the position moves on) and a
*reshuffle* (after a rollback the data not yet seen is read in a new order). A reshuffle
from position s with seed k maps p >= s to s + (a*(p-s) + b) mod (N-s), an affine
permutation: O(1) memory at any corpus size, deterministic, different for every k.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


def affine_permutation(size: int, seed: int) -> tuple[int, int]:
    """(a, b) with gcd(a, size) = 1, so i -> (a*i + b) mod size is a bijection."""
    rng = random.Random(seed)
    if size <= 1:
        return 1, 0
    while True:
        a = rng.randrange(1, size) | 1 if size > 2 else 1
        if math.gcd(a, size) == 1:
            return a, rng.randrange(size)


@dataclass
class DataOrder:
    size: int  # samples in the training dataset
    reshuffles: list[list[int]] = field(default_factory=list)  # [start position, seed], oldest first

    def index(self, position: int) -> int:
        if not 0 <= position < self.size:
            raise IndexError(
                f"data position {position} is past the training dataset ({self.size} samples); "
                "raise train.steps margin or check skipped windows"
            )
        for start, seed in reversed(self.reshuffles):  # newest order first
            if position >= start:
                a, b = affine_permutation(self.size - start, seed)
                position = start + (a * (position - start) + b) % (self.size - start)
        return position

    def reshuffle_from(self, start: int, seed: int) -> None:
        self.reshuffles.append([start, seed])

    def state_dict(self) -> dict:
        return {"reshuffles": [list(r) for r in self.reshuffles]}

    def load_state_dict(self, state: dict) -> None:
        self.reshuffles = [list(r) for r in state.get("reshuffles", [])]


def rank_micro_batches(
    order: DataOrder, position: int, global_batch: int, rank: int, world_size: int, micro_batch: int
) -> list[list[int]]:
    """Rank `rank`'s micro-batches (dataset indices) of the step that reads [position, position +
    global_batch): its contiguous slice of the global batch, cut into micro-batches."""
    per_rank = global_batch // world_size
    start = position + rank * per_rank
    positions = range(start, start + per_rank)
    return [[order.index(p) for p in positions[i : i + micro_batch]] for i in range(0, per_rank, micro_batch)]
