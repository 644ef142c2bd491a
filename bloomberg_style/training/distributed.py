"""Process-group set-up that works the same under `deepspeed`, `torchrun`, SLURM and plain `python`.

On a machine without CUDA, DeepSpeed must be told to use its CPU accelerator before it is
imported, and the collective backend is gloo. A plain `python launch/pretrain.py` gets a
one-process group so every code path (DeepSpeed, megatron-core) sees the same world.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

T = TypeVar("T")


def select_accelerator() -> str:
    """Set DS_ACCELERATOR before DeepSpeed is imported; returns "cuda" or "cpu"."""
    if "DS_ACCELERATOR" not in os.environ:
        os.environ["DS_ACCELERATOR"] = "cuda" if torch.cuda.is_available() else "cpu"
    return os.environ["DS_ACCELERATOR"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    accelerator: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        if self.accelerator == "cuda":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


def init_distributed(torch_threads: int = 0) -> DistInfo:
    """Start (or join) the process group; a single process gets a world of one."""
    accelerator = select_accelerator()
    if "RANK" not in os.environ:  # plain `python script.py`: one rank on this host
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    if accelerator == "cpu":
        threads = torch_threads or max(1, (os.cpu_count() or 1) // max(1, local_world))
        torch.set_num_threads(threads)

    import deepspeed  # imported here, after DS_ACCELERATOR is set

    if not torch.distributed.is_initialized():
        deepspeed.init_distributed(dist_backend="nccl" if accelerator == "cuda" else "gloo", verbose=False)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if accelerator == "cuda":
        torch.cuda.set_device(local_rank)
    return DistInfo(
        rank=torch.distributed.get_rank(),
        world_size=torch.distributed.get_world_size(),
        local_rank=local_rank,
        accelerator=accelerator,
    )


def barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few floats over all ranks (float64, so token counts stay exact)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.all_reduce(t)
    return t.tolist()


def broadcast_object(obj: object, src: int = 0) -> object:
    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() == 1:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=src)
    return box[0]


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def on_main_rank(
    work: Callable[[], T],
    fail: Callable[[str], Exception] = RuntimeError,
    *,
    every_rank: bool = False,
    catch: tuple[type[BaseException], ...] = (Exception,),
    describe: Callable[[BaseException], str] = describe_error,
) -> T | None:
    """Run `work` on rank 0 (or on every rank) and raise rank 0's error on every rank.

    A rank that fails alone leaves the others waiting forever at their next collective,
    so rank 0's error (described as text) is broadcast and every rank raises
    `fail(text)`. Returns `work()`'s result where it ran, None elsewhere.
    """
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    result, error = None, None
    if every_rank or rank == 0:
        try:
            result = work()
        except catch as exc:
            error = describe(exc)
    error = broadcast_object(error)
    if error:
        raise fail(error)
    return result
