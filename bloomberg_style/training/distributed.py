"""Process-group set-up that works the same under `deepspeed`, `torchrun`, SLURM and plain `python`.

On a machine without CUDA, DeepSpeed must be told to use its CPU accelerator before it is
imported, and the collective backend is gloo. A plain `python launch/pretrain.py` gets a
one-process group so every code path (DeepSpeed, megatron-core) sees the same world.

Restarts under torchrun (`--max-restarts`): the agent hosts one TCP store for the whole
launch and hands every restart round the same MASTER_ADDR:MASTER_PORT, and torch's env://
set-up then uses that store without a per-attempt prefix. The keys a killed round left in it
(each rank's gloo/NCCL address) are still there when the next round starts, so a new rank
can read a dead rank's address and fail with "connectFullMesh ... Connection refused" (or
wait for a rank that never comes). We build the store ourselves and prefix its keys with the
attempt number (TORCHELASTIC_RESTART_COUNT), so every round meets in an empty namespace.
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
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

    if accelerator == "cpu":
        if int(os.environ.get("LOCAL_RANK", "0")) == 0:
            remove_stale_shm_buffers()
        disable_cpu_shm_allreduce()

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if accelerator == "cuda":
        torch.cuda.set_device(local_rank)
    backend = "nccl" if accelerator == "cuda" else "gloo"
    if not torch.distributed.is_initialized() and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        init_under_torchelastic(backend, accelerator, local_rank)
    # DeepSpeed's communication backend, over the process group when one exists already (e.g.
    # started by torch.distributed directly): without it deepspeed.comm has no rank to give.
    deepspeed.init_distributed(dist_backend=backend, verbose=False)
    return DistInfo(
        rank=torch.distributed.get_rank(),
        world_size=torch.distributed.get_world_size(),
        local_rank=local_rank,
        accelerator=accelerator,
    )


def process_group_timeout() -> timedelta:
    """DeepSpeed's default (DEEPSPEED_TIMEOUT minutes, 10 unless set): the same either way."""
    from deepspeed.constants import default_pg_timeout

    return default_pg_timeout


def init_under_torchelastic(backend: str, accelerator: str, local_rank: int) -> None:
    """Join the agent's store under a per-attempt prefix (see the module docstring)."""
    env = os.environ
    rank, world_size = int(env["RANK"]), int(env["WORLD_SIZE"])
    timeout = process_group_timeout()
    store = torch.distributed.TCPStore(
        env["MASTER_ADDR"], int(env["MASTER_PORT"]), world_size, is_master=False, timeout=timeout
    )
    attempt = env.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = torch.distributed.PrefixStore(f"bloomberg_style/attempt_{attempt}", store)
    extra = {"device_id": torch.device("cuda", local_rank)} if accelerator == "cuda" else {}
    torch.distributed.init_process_group(
        backend, store=store, rank=rank, world_size=world_size, timeout=timeout, **extra
    )


def disable_cpu_shm_allreduce() -> None:
    """Keep DeepSpeed from creating its CPU shared-memory allreduce buffers.

    They serve only `inference_all_reduce` (DeepSpeed inference); training collectives go
    through the gloo process group either way. Each rank's buffer is a 69 MB /dev/shm file
    that nothing deletes, so every deepspeed-launched CPU run (LOCAL_SIZE set) left them behind.
    """
    import deepspeed.ops

    with contextlib.suppress(AttributeError, TypeError):  # another layout: buffers stay possible
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


SHM_BUFFER_GLOB = "/dev/shm/deepspeed_allreduce_buffer_{uid}_*"
SHM_STALE_AFTER_S = 60.0  # younger files may belong to a run that is starting right now


def remove_stale_shm_buffers(pattern: str | None = None, maps_glob: str = "/proc/[0-9]*/maps") -> list[str]:
    """Delete this user's DeepSpeed shared-memory allreduce buffers that no live process maps.

    Every rank of a DeepSpeed-launched CPU run maps its own and its peers' buffers while it
    runs; one that no process has mapped (and that is over a minute old) is left over from a
    run that ended or was killed. Returns the removed paths.
    """
    pattern = pattern or SHM_BUFFER_GLOB.format(uid=os.getuid())
    candidates = [p for p in glob.glob(pattern) if time.time() - _mtime(p) > SHM_STALE_AFTER_S]
    if not candidates:
        return []
    mapped: set[str] = set()
    for maps in glob.glob(maps_glob):
        try:
            with open(maps, encoding="utf-8", errors="replace") as f:
                mapped.update(line.split(None, 5)[-1].strip() for line in f if "allreduce_buffer" in line)
        except OSError:  # a process that ended, or one of another user
            continue
    removed = []
    for path in candidates:
        if path in mapped or f"{path} (deleted)" in mapped:
            continue
        try:
            os.unlink(path)
            removed.append(path)
        except FileNotFoundError:  # another rank removed it first
            pass
    return removed


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return time.time()


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
