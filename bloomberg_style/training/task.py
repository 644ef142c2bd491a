"""What differs between pretraining and fine-tuning, handed to the trainer whole.

The loop, checkpoints, resume, interventions and metrics are the same for every run;
a task says which samples to train on, how a micro-batch is put together, and which
held-out sets judge the model (and with what weight in the "total" metric that picks
the best checkpoint and feeds the controller).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bloomberg_style.model.model import IGNORE_INDEX
from bloomberg_style.training.distributed import DistInfo, all_reduce_sum

Batch = dict[str, torch.Tensor]  # tokens, labels (already shifted; IGNORE_INDEX = no loss), loss_mask
Collate = Callable[[list[dict[str, Any]]], Batch]


def stack_samples(samples: list[dict[str, Any]]) -> Batch:
    """Fixed-length rows (pretraining): stack them as they are."""
    return {
        key: torch.stack([torch.as_tensor(s[key]) for s in samples])
        for key in ("tokens", "labels", "loss_mask")
    }


@dataclass
class HeldOutLoss:
    """Mean loss per scored token of each held-out set, over the whole set (or `max_samples`)."""

    datasets: dict[str, Any]
    weights: dict[str, float]  # each set's weight in the "total" metric
    collate: Collate
    micro_batch_size: int
    max_samples: int = 0  # 0 = every sample
    budget: Callable[[int, int], int] | None = None  # (rows available, sets) -> rows to score

    @torch.no_grad()
    def __call__(self, engine, dist: DistInfo) -> dict[str, float]:
        engine.eval()
        results = {}
        mb = self.micro_batch_size
        for name, dataset in self.datasets.items():
            n = min(len(dataset), self.max_samples) if self.max_samples else len(dataset)
            if self.budget is not None:
                n = self.budget(n, len(self.datasets))
            mine = list(range(dist.rank, n, dist.world_size))
            # Summed on the device in float64 (the same sum as adding Python floats): one host read per set.
            loss_sum = torch.zeros((), dtype=torch.float64, device=dist.device)
            tokens = torch.zeros((), dtype=torch.float64, device=dist.device)
            # Every rank runs the same number of forward passes (ZeRO-3 gathers collectively).
            passes = math.ceil(math.ceil(n / dist.world_size) / mb)
            for p in range(passes):
                indices = mine[p * mb : (p + 1) * mb]
                batch = to_device(self.collate([dataset[i] for i in indices or [0]]), dist.device)
                loss = engine(batch["tokens"], labels=batch["labels"], loss_mask=batch["loss_mask"])
                if indices:
                    scored = ((batch["labels"] != IGNORE_INDEX) & (batch["loss_mask"] > 0)).sum().double()
                    loss_sum += loss.float().double() * scored
                    tokens += scored
            loss_sum, tokens = all_reduce_sum(torch.stack([loss_sum, tokens]).tolist(), dist.device)
            results[name] = loss_sum / max(tokens, 1.0)
        engine.train()
        return results


@dataclass
class ExtraEvaluation:
    """Scores logged beside the held-out loss every `interval` steps (e.g. task scores).

    Built by a layer above training and passed in (evaluation/in_loop.py makes the one
    pretraining uses), so the trainer never imports evaluation. The controller and the
    best checkpoint never read these numbers: they only go to metrics.jsonl / wandb.
    """

    interval: int  # steps between scorings (step 0 and the last step are scored too)
    score: Callable[[Any, DistInfo], dict[str, float]]  # (engine, dist) -> {"task/NAME": score}
    all_ranks: bool  # ZeRO-3: every forward gathers shards collectively, so every rank scores
    plot: Callable[[Path], Any] | None = None  # redraws its PNG in the run folder (rank 0)


@dataclass
class TrainingTask:
    train: Any  # sample i (a dict of arrays) is a pure function of i: resume is exact
    collate: Collate
    evaluation: HeldOutLoss
    tokens_per_sample: int  # counted per training sample (tokens_seen, throughput)
    extra_evaluation: ExtraEvaluation | None = None


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Copy a batch to `device`; asynchronous on CUDA (from pinned memory it overlaps compute)."""
    return {k: v.to(device, non_blocking=device.type == "cuda") for k, v in batch.items()}
