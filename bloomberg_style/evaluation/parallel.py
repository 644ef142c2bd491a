"""Data-parallel task scoring: each rank scores a strided share of a task's test examples and
the ranks' per-example records are merged into the result one device would give.

    torchrun --nproc_per_node 8 launch/evaluate.py --checkpoint RUN --tasks fpb.jsonl --dtype bf16

Every rank holds the whole model (in bf16 that is 2 bytes a parameter), so this divides the
time, not the memory, of an evaluation (--shard-weights, sharded.py, divides the memory).
Each example keeps the shots a single-device run gives it (they are drawn by its index in
the full task), so the merged result is the same up to the rounding of batched matmuls. Held-out loss on shards is computed on every rank
(rank 0's is reported). Ranks talk through torch.distributed (gloo on CPU, NCCL on GPUs),
started from the launcher's environment (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT).
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch
import torch.distributed as dist

from bloomberg_style.evaluation.fewshot import Task, TaskResult, score_task, summarise
from bloomberg_style.evaluation.gen_tasks import (
    GenerationResult,
    GenerationTask,
    score_generation_task,
    summarise_generation,
)


def init_from_env() -> tuple[int, int]:
    """(rank, world size); starts the process group when a launcher set WORLD_SIZE > 1."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def local_device() -> str | None:
    """cuda:LOCAL_RANK under a multi-GPU launcher, else None (the default device)."""
    if torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return None


def score_parallel(
    model, tokenizer, task: Task | GenerationTask, rank: int, world: int, *, limit: int = 0, **options
) -> TaskResult | GenerationResult:
    """Score `task` across `world` ranks (call on every rank); every rank gets the merged result."""
    if limit:
        task = dataclasses.replace(task, test=task.test[:limit])
    start = time.perf_counter()
    share = list(range(rank, len(task.test), world))
    generation = isinstance(task, GenerationTask)
    part: tuple[list, int, int] = ([], 0, 0)
    if share:
        fn = score_generation_task if generation else score_task
        r = fn(model, tokenizer, task, indices=share, **options)
        part = (r.predictions, r.shots_dropped, r.truncated)
    parts: list = [None] * world
    dist.all_gather_object(parts, part)
    records = sorted((p for records, _, _ in parts for p in records), key=lambda p: p["line"])
    common = {
        "shots": task.shots if options.get("shots") is None else options["shots"],
        "seed": options.get("seed", 1234),
        "dropped": sum(d for _, d, _ in parts),
        "truncated": sum(t for _, _, t in parts),
        "seconds": time.perf_counter() - start,
    }
    if generation:
        return summarise_generation(task, records, **common)
    return summarise(task, records, rule=options.get("rule"), **common)
