"""The next step's micro-batches, read and collated on a background thread during this step.

The trainer says which dataset indices it will need next (its guess of the next step's
slice of the data order) and asks for the indices it really needs when the step starts.
A batch is keyed by those indices, so a wrong guess (a rollback, a reshuffle, a skipped
window, a resume) costs one synchronous load and can never hand over other data: the
order stays exactly the data order's, and nothing about it lives in the prefetcher.

On CUDA the batches are put in pinned memory on the background thread, so the copy to the
device in `to_device` is asynchronous (non_blocking); on CPU both are no-ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from bloomberg_style.training.task import Batch

Indices = tuple[tuple[int, ...], ...]  # one tuple of dataset indices per micro-batch


def pin(batch: Batch) -> Batch:
    return {k: v.pin_memory() for k, v in batch.items()}


class BatchPrefetcher:
    """One step ahead: `prefetch(next)` starts loading, `get(needed)` returns `needed`'s batches."""

    def __init__(self, load: Callable[[Sequence[int]], Batch], pin_memory: bool = False):
        self._load = load
        self._pin = pin_memory
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[Indices, Future] | None = None
        self.hits = self.misses = 0  # how often the guess was right (tests, diagnostics)

    def _load_all(self, indices: Indices) -> list[Batch]:
        batches = [self._load(list(mb)) for mb in indices]
        return [pin(b) for b in batches] if self._pin else batches

    def prefetch(self, micro_batches: Sequence[Sequence[int]]) -> None:
        """Start loading these micro-batches (dataset indices) in the background."""
        key = _key(micro_batches)
        if self._pending is not None and self._pending[0] == key:
            return
        self._drop_pending()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-prefetch")
        self._pending = (key, self._pool.submit(self._load_all, key))

    def get(self, micro_batches: Sequence[Sequence[int]]) -> list[Batch]:
        """The batches of exactly these dataset indices (prefetched if the guess was right)."""
        key = _key(micro_batches)
        if self._pending is not None and self._pending[0] == key:
            future = self._pending[1]
            self._pending = None
            self.hits += 1
            return future.result()  # a load error surfaces here, in the training thread
        self._drop_pending()
        self.misses += 1
        return self._load_all(key)

    def _drop_pending(self) -> None:
        if self._pending is not None:
            future = self._pending[1]
            self._pending = None
            if not future.cancel():
                future.exception()  # wait for it (one load in flight at most); its result is not wanted

    def close(self) -> None:
        self._drop_pending()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _key(micro_batches: Sequence[Sequence[int]]) -> Indices:
    return tuple(tuple(int(i) for i in mb) for mb in micro_batches)


def pin_memory_available(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available()
