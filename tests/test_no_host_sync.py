"""The step path reads device values on the host once per optimizer step, not per micro-batch.

On a GPU every read of a device value (item, tolist, float/int/bool of a tensor) waits for all
queued work. Counted here on CPU by wrapping those Tensor methods around a real DeepSpeed
engine's optimizer step: reads made by our step code, and reads made anywhere (DeepSpeed's
own overflow check included), with 1, 2 and 4 micro-batches per step.
"""

from __future__ import annotations

import collections
import sys

import pytest
import torch

from bloomberg_style.model import BloomForCausalLM, ModelConfig, param_groups
from bloomberg_style.training.step import optimizer_step

pytestmark = pytest.mark.usefixtures("one_thread")

READS = ("item", "tolist", "__bool__", "__float__", "__int__", "numpy")
# BloomForCausalLM._check_inputs range-checks token ids only on CPU tensors (on a GPU it would
# sync, so it does not run there): its reads are not part of the GPU step path.
CPU_ONLY = {"_check_inputs"}


class HostReads:
    """Counts host reads of tensors while active: all of them, and those made by our step code."""

    def __init__(self, monkeypatch):
        self.ours = collections.Counter()
        self.anywhere = 0
        for name in READS:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._wrap(name, original))

    def _wrap(self, name, original):
        def counted(tensor, *args, **kwargs):
            caller = sys._getframe(1)
            if caller.f_code.co_name not in CPU_ONLY:
                self.anywhere += 1
                if "bloomberg_style" in caller.f_code.co_filename:
                    self.ours[f"{caller.f_code.co_filename.rsplit('/', 1)[-1]}:{caller.f_lineno} {name}"] += 1
            return original(tensor, *args, **kwargs)

        return counted


def _engine(micro_steps: int):
    import deepspeed

    from bloomberg_style.training.distributed import init_distributed

    init_distributed(torch.get_num_threads())
    torch.manual_seed(0)
    model = BloomForCausalLM(ModelConfig(vocab_size=97, hidden_size=32, num_layers=2, num_heads=4))
    config = {
        "train_batch_size": 2 * micro_steps,
        "train_micro_batch_size_per_gpu": 2,
        "gradient_accumulation_steps": micro_steps,
        "gradient_clipping": 1.0,
        "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "torch_adam": True}},
        "zero_optimization": {"stage": 2},
        "steps_per_print": 10**9,
    }
    engine, *_ = deepspeed.initialize(model=model, model_parameters=param_groups(model, 0.1), config=config)
    return engine


def _batches(n: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    tokens = [torch.randint(0, 97, (2, 16), generator=g) for _ in range(n)]
    return [{"tokens": t, "labels": t, "loss_mask": torch.ones_like(t, dtype=torch.float32)} for t in tokens]


def _count_step_reads(monkeypatch, micro_steps: int, loss_hook=lambda loss: loss):
    engine = _engine(micro_steps)
    batches = _batches(micro_steps)
    optimizer_step(engine, batches, 1e-3, 1, torch.device("cpu"))  # warm-up: first-step setup reads
    with monkeypatch.context() as m:
        reads = HostReads(m)
        out = optimizer_step(engine, batches, 1e-3, 1, torch.device("cpu"), loss_hook=loss_hook)
    return reads, out


@pytest.mark.slow
def test_one_host_read_per_step_whatever_the_accumulation(monkeypatch):
    counts = {}
    for micro_steps in (1, 2, 4):
        reads, out = _count_step_reads(monkeypatch, micro_steps)
        assert out.applied and 0 < out.loss < 10
        assert sum(reads.ours.values()) <= 1, f"{micro_steps} micro-batches: {dict(reads.ours)}"
        counts[micro_steps] = reads.anywhere
    # Nothing anywhere in the step (DeepSpeed included) reads once more per extra micro-batch.
    assert counts[1] == counts[2] == counts[4], counts


@pytest.mark.slow
def test_nan_loss_still_skips_the_update_with_one_read(monkeypatch):
    reads, out = _count_step_reads(monkeypatch, 2, loss_hook=lambda loss: loss * float("nan"))
    assert not out.applied
    assert out.loss != out.loss  # NaN reaches the spike monitor as it did when read per micro-batch
    assert sum(reads.ours.values()) <= 1, dict(reads.ours)


# ---- the prefetcher hands over exactly the data order's batches --------------------------------


def _dataset(n: int, seq: int = 6) -> list[dict]:
    import numpy as np

    return [
        {
            "tokens": np.arange(i * seq, (i + 1) * seq),
            "labels": np.arange(1, seq + 1) + i,
            "loss_mask": np.ones(seq),
        }
        for i in range(n)
    ]


def _read_steps(order, prefetcher, position: int, steps: range, events: dict, rank: int = 1):
    """The trainer's batch path for rank 1 of 2: this step's batches, the next step guessed;
    `events` changes the order or the position between steps as interventions do."""
    from bloomberg_style.training.data_order import rank_micro_batches

    global_batch = lambda step: 4 if step < 3 else 8  # noqa: E731  (a batch ramp at step 3)
    seen = {}
    for step in steps:
        kind = events.get(step)
        if kind == "reshuffle":  # after the guess was made: the guess is now wrong
            order.reshuffle_from(position, seed=step)
        elif kind == "skip":
            position += 8
        needed = rank_micro_batches(order, position, global_batch(step), rank, 2, 2)
        seen[step] = (needed, prefetcher.get(needed))
        prefetcher.prefetch(
            rank_micro_batches(order, position + global_batch(step), global_batch(step + 1), rank, 2, 2)
        )
        position += global_batch(step)
    return seen, position


def test_prefetcher_yields_the_data_orders_batches_across_a_resume():
    from bloomberg_style.training.data_order import DataOrder, rank_micro_batches
    from bloomberg_style.training.prefetch import BatchPrefetcher
    from bloomberg_style.training.task import stack_samples

    data = _dataset(200)
    load = lambda indices: stack_samples([data[i] for i in indices])  # noqa: E731
    events = {4: "reshuffle", 6: "skip", 8: "reshuffle"}

    straight = BatchPrefetcher(load)
    order = DataOrder(len(data))
    seen, _ = _read_steps(order, straight, 0, range(10), events)
    straight.close()
    assert straight.hits >= 6 and straight.misses == 1 + 3  # the first step, then each intervention

    # Resume at step 5: the order comes back from its saved state, the prefetcher starts empty.
    first = BatchPrefetcher(load)
    order_a = DataOrder(len(data))
    _, position = _read_steps(order_a, first, 0, range(5), events)
    first.close()
    order_b = DataOrder(len(data))
    order_b.load_state_dict(order_a.state_dict())
    resumed = BatchPrefetcher(load)
    after, _ = _read_steps(order_b, resumed, position, range(5, 10), events)
    resumed.close()

    for step, (needed, batches) in after.items():
        assert needed == seen[step][0], step  # the same dataset indices ...
        for got, want, expected_indices in zip(batches, seen[step][1], needed, strict=True):
            expected = load(expected_indices)  # ... and exactly their samples, in order
            for key in ("tokens", "labels", "loss_mask"):
                assert torch.equal(got[key], want[key]) and torch.equal(got[key], expected[key])
    assert seen[4][0] != rank_micro_batches(DataOrder(len(data)), 20, 8, 1, 2, 2)  # step 4 reshuffled


def test_prefetcher_surfaces_a_load_error_in_the_training_thread():
    from bloomberg_style.training.prefetch import BatchPrefetcher

    def load(indices):
        raise KeyError(f"sample {indices[0]} is missing")

    prefetcher = BatchPrefetcher(load)
    prefetcher.prefetch([[3, 4]])
    with pytest.raises(KeyError, match="sample 3"):
        prefetcher.get([[3, 4]])
    prefetcher.close()
