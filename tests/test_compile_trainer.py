"""train.compile: regional compile of the blocks trains like the eager model under ZeRO 0-3.

A real DeepSpeed engine (one gloo rank) per ZeRO stage, activation checkpointing on, the
model compiled the way build_run compiles it (training/regional_compile.py, inductor), against
the same model uncompiled, three optimizer steps of two micro-batches each.

Tolerance: rtol 1e-5 / atol 1e-6 on each step's loss. Inductor fuses and reorders the
fp32 reductions (LayerNorm, softmax, GeLU's tanh), so values differ from eager in the last
bits (~1e-7 relative); AdamW's normalised updates can amplify such differences for
near-zero gradients, so the bound leaves two orders of magnitude over what this machine
measures (at most 1.2e-7 absolute over three steps). A real error (a block skipped, a wrong
bias, a lost gradient) moves the loss by > 1e-2.
"""

from __future__ import annotations

import time

import pytest
import torch

from bloomberg_style.config import zero3_compile_problem
from bloomberg_style.model import BloomForCausalLM, ModelConfig, param_groups
from bloomberg_style.training.metrics import read_jsonl
from bloomberg_style.training.regional_compile import compile_blocks, transformer_blocks
from bloomberg_style.training.step import optimizer_step
from tests.conftest import run_launcher, tiny_run_config

pytestmark = pytest.mark.usefixtures("one_thread")


def _losses(zero_stage: int, compiled: bool, steps: int = 3) -> list[float]:
    import deepspeed

    from bloomberg_style.training.distributed import init_distributed

    init_distributed(torch.get_num_threads())
    torch.manual_seed(0)
    model = BloomForCausalLM(
        ModelConfig(vocab_size=97, hidden_size=32, num_layers=2, num_heads=4, activation_checkpointing=True)
    )
    if compiled:
        assert compile_blocks(model, zero_stage) == 2
        compiled = [b._compiled_call_impl is not None or hasattr(b.forward, "_torchdynamo_orig_callable")
                    for b in model.transformer.h]  # fmt: skip
        assert all(compiled)
    config = {
        "train_batch_size": 4,
        "train_micro_batch_size_per_gpu": 2,
        "gradient_accumulation_steps": 2,
        "gradient_clipping": 1.0,
        "optimizer": {"type": "AdamW", "params": {"lr": 3e-3, "torch_adam": True}},
        "zero_optimization": {"stage": zero_stage},
        "steps_per_print": 10**9,
    }
    engine, *_ = deepspeed.initialize(model=model, model_parameters=param_groups(model, 0.1), config=config)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        tokens = [torch.randint(0, 97, (2, 16), generator=g) for _ in range(2)]
        batches = [{"tokens": t, "labels": t, "loss_mask": torch.ones(t.shape)} for t in tokens]
        out = optimizer_step(engine, batches, 3e-3, 1, torch.device("cpu"))
        assert out.applied
        losses.append(out.loss)
    return losses


@pytest.mark.slow
@pytest.mark.parametrize("zero_stage", [0, 1, 2, 3])
def test_compiled_blocks_train_like_eager(zero_stage):
    if zero_stage == 3 and (problem := zero3_compile_problem()):
        pytest.skip(problem)  # refused by TrainSection.validate and compile_blocks
    eager = _losses(zero_stage, compiled=False)
    from torch._dynamo.utils import counters

    counters.clear()
    start = time.perf_counter()
    compiled = _losses(zero_stage, compiled=True)
    assert not counters["graph_break"], dict(counters["graph_break"])  # ZeRO-3's hooks stay outside
    # One graph serves both blocks, no per-layer recompile (0 when an earlier test in this
    # process already compiled the same code; 2 on torch 2.12 under ZeRO-3).
    assert counters["stats"]["unique_graphs"] <= 1, dict(counters["stats"])
    print(
        f"ZeRO {zero_stage}: compiled run {time.perf_counter() - start:.1f} s; losses {compiled} vs {eager}"
    )
    torch.testing.assert_close(torch.tensor(compiled), torch.tensor(eager), rtol=1e-5, atol=1e-6)
    assert eager[-1] < eager[0]  # it trains: the comparison is between moving runs


def test_train_compile_is_validated(monkeypatch):
    from bloomberg_style import config
    from bloomberg_style.config import ConfigError, TrainSection

    TrainSection(compile=True).validate()
    with pytest.raises(ConfigError, match="train.compile must be true or false"):
        TrainSection(compile="maybe").validate()
    assert zero3_compile_problem("2.13.0+cpu") is None and zero3_compile_problem("2.14.1") is None
    assert zero3_compile_problem("3.0.0") is None
    # torch 2.11 (the GPU image's): no gradient for compiled blocks under ZeRO-3; 2.12: a graph
    # per block (both measured).
    assert "needs torch >= 2.13 (this is 2.11.0+cu130)" in zero3_compile_problem("2.11.0+cu130")
    assert "one graph per block" in zero3_compile_problem("2.12.1+cu130")
    monkeypatch.setattr(config, "installed_torch_version", lambda: "2.11.0+cu130")
    TrainSection(compile=True, zero_stage=2).validate()
    with pytest.raises(ConfigError, match=r"train.compile with zero_stage 3 needs torch >= 2.13"):
        TrainSection(compile=True, zero_stage=3).validate()
    model = BloomForCausalLM(ModelConfig(vocab_size=97, hidden_size=32, num_layers=2, num_heads=4))
    with pytest.raises(ValueError, match="parameters no gradient"):
        compile_blocks(model, zero_stage=3)


@pytest.mark.slow
def test_pretraining_with_train_compile_matches_eager(tmp_path, small_data):
    """The run config's switch, end to end: ZeRO-3, activation checkpointing, launch/pretrain.py."""
    if problem := zero3_compile_problem():
        pytest.skip(problem)
    train = {
        "steps": 2,
        "zero_stage": 3,
        "activation_checkpointing": True,
        "eval_interval": 2,
        "save_interval": 2,
    }
    losses = {}
    for compiled in (False, True):
        name = f"compile_{compiled}"
        cfg = tiny_run_config(tmp_path, small_data, name=name, train={**train, "compile": compiled})
        run_launcher(["--config", str(cfg)])
        records = read_jsonl(tmp_path / "runs" / name / "metrics.jsonl")
        losses[compiled] = [r["loss"] for r in records if "loss" in r]
    assert len(losses[True]) == 2
    # Two processes, each compiling with inductor: alone they agree to ~1e-7, but inside the full
    # suite (inductor's on-disk kernel cache filled by other tests) step 1 was measured 2.2e-5
    # relative apart. 1e-4 still fails on any real error (those move the loss by > 1e-2).
    torch.testing.assert_close(torch.tensor(losses[True]), torch.tensor(losses[False]), rtol=1e-4, atol=1e-6)


def test_the_blocks_found_are_the_transformer_stack():
    model = BloomForCausalLM(ModelConfig(vocab_size=97, hidden_size=32, num_layers=3, num_heads=4))
    assert transformer_blocks(model) is model.transformer.h
    with pytest.raises(ValueError, match="no ModuleList"):
        transformer_blocks(torch.nn.Linear(2, 2))
