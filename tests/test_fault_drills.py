"""Fault drills in bf16: a NaN loss and an infinite gradient at ZeRO-2 and ZeRO-3.

DeepSpeed skips an optimizer step whose gradients are not finite. The drill checks what
that promise is worth in the precision the paper trained in: the FP32 master weights in
the checkpoint after the poisoned step equal those before it, the run goes on training,
and no checkpoint (master weights or the bf16 module copy) holds a non-finite value.
"""

from __future__ import annotations

import pytest
import torch

from bloomberg_style.artifacts import load_checkpoint_state_dict
from bloomberg_style.artifacts.safe_load import load_weights_only
from bloomberg_style.training.metrics import read_jsonl
from tests.conftest import run_launcher, tiny_run_config

POISONED = 3  # the optimizer step (1-based) whose gradients are poisoned


@pytest.mark.slow
@pytest.mark.parametrize("zero_stage", [2, 3])
@pytest.mark.parametrize("fault", ["nan", "inf_grad"])
def test_poisoned_step_is_skipped_and_weights_stay_put(tmp_path, small_data, fault, zero_stage):
    name = f"{fault}-z{zero_stage}"
    cfg = tiny_run_config(
        tmp_path, small_data, name=name,
        optim={"lr": 3e-3, "min_lr": 3e-3, "warmup_steps": 0},
        train={"steps": 4, "precision": "bf16", "zero_stage": zero_stage, "save_interval": 1,
               "eval_interval": 4, "keep_last": 5},
    )  # fmt: skip
    run_launcher(["--config", str(cfg)], env={"BLOOMBERG_STYLE_INJECT": f"{fault}@{POISONED}"})
    run = tmp_path / "runs" / name
    events = [e for e in read_jsonl(run / "events.jsonl") if e["event"] == "skip_step"]
    assert [e["step"] for e in events] == [POISONED]
    assert (run / "index_cache").is_dir()  # the index cache lives in the run folder
    attention = [e for e in read_jsonl(run / "events.jsonl") if e["event"] == "attention"]
    assert attention and attention[0]["path"] == "sdpa" and "CUDA" in attention[0]["fallback_reason"]

    ckpts = run / "checkpoints"
    weights = {s: load_checkpoint_state_dict(ckpts / f"step_{s:08d}")[1] for s in range(1, 5)}
    before, after, later = weights[POISONED - 1], weights[POISONED], weights[POISONED + 1]
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the skipped step changed nothing
    assert any(not torch.equal(after[k], later[k]) for k in after)  # and training went on
    for step, state in weights.items():
        assert all(torch.isfinite(v).all() for v in state.values()), f"step {step}: non-finite master weights"
        for path in (ckpts / f"step_{step:08d}").glob("*model_states.pt"):  # the bf16 module copy
            module = load_weights_only(path)["module"]
            assert all(torch.isfinite(v.float()).all() for v in module.values() if v.numel()), path
