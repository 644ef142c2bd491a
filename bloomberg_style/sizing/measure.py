"""What activation checkpointing saves, measured two ways.

- saved_activation_bytes: the distinct storages autograd keeps for the backward pass while
  a function runs (counted by a saved-tensors hook; deterministic, any device). A
  checkpointed block hands autograd only its inputs; its inner tensors are recomputed.
- peak_memory_bytes: the high-water mark of memory while a function runs, above what was
  in use before. CUDA: the caching allocator's max_memory_allocated. CPU: the process's
  peak resident set (Linux VmHWM, reset through /proc/self/clear_refs), with glibc told
  to return freed blocks of 64 KiB and up to the OS at once and its free pages trimmed
  before the run, so RSS follows live tensors.
"""

from __future__ import annotations

import ctypes
import functools
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch


def saved_activation_bytes(fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()) -> tuple[int, Any]:
    """(bytes of distinct storages saved for backward while `fn` runs, fn's result).

    `exclude` (e.g. model.parameters()) are not activations: weights saved by matmuls.
    """
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in excluded:
            saved[storage.data_ptr()] = storage.nbytes()  # saved tensors stay alive: pointers are unique
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    return sum(saved.values()), result


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc with blocks >= 64 KiB mmap'ed (freed straight back to the OS), or None if not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024) and libc.mallopt(M_TRIM_THRESHOLD, 64 * 1024)
        return libc if ok else None
    except (OSError, AttributeError):
        return None


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1))


def cpu_peak_supported() -> bool:
    """True where the CPU measurement works (Linux with glibc and a writable clear_refs)."""
    if _libc() is None:
        return False
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _status_kib("VmHWM")
        return True
    except (OSError, AttributeError):
        return False


def peak_memory_bytes(fn: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[int | None, Any]:
    """(peak bytes in use while `fn` ran above the level before it, fn's result); None if unmeasurable."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        result = fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before, result
    if device.type != "cpu" or not cpu_peak_supported():
        return None, fn()
    _libc().malloc_trim(0)  # pages of blocks freed earlier leave RSS: reusing them counts again
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS")
    result = fn()
    return (_status_kib("VmHWM") - before) * 1024, result
