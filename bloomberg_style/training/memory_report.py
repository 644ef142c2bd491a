"""Each rank's peak memory, collected on rank 0 and printed as one line.

The rehearsal's pass mark (issue 13) is read off these lines: host RSS high-water
(`ru_maxrss`) on CPU ranks, the allocator's peak on GPUs.
"""

from __future__ import annotations

import resource
import sys

import torch


def peak_memory_bytes() -> int:
    """This process's peak: device memory on CUDA, else host RSS (Linux reports KiB)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return int(torch.cuda.max_memory_allocated())
    try:  # Linux: this process's own high-water mark. ru_maxrss also counts the parent's RSS
        # at fork (the kernel carries it over exec), so a worker started from a big process
        # would report the parent's size.
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def gather_peaks() -> list[int]:
    """Every rank's peak (collective: all ranks call it); one entry without distributed."""
    import torch.distributed as dist

    mine = peak_memory_bytes()
    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    out: list[int] = [0] * dist.get_world_size()
    dist.all_gather_object(out, mine)
    return out


def format_peaks(label: str, peaks: list[int]) -> str:
    kind = "device" if torch.cuda.is_available() and torch.cuda.is_initialized() else "host RSS"
    mib = [p / 2**20 for p in peaks]
    per_rank = " ".join(f"{m:.0f}" for m in mib)
    return f"memory {label}: peak {kind} MiB per rank [{per_rank}] (max {max(mib):.0f})"


def report_memory(label: str, log=print) -> list[int]:
    """Gather and print (rank 0) each rank's peak memory; returns the peaks in bytes."""
    import torch.distributed as dist

    peaks = gather_peaks()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0:
        log(format_peaks(label, peaks))
    return peaks
