"""The trainer's state object: snapshot / restore, what a rollback keeps, fire-drill specs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from bloomberg_style.config import ControllerSection
from bloomberg_style.controllers import LRController, SpikeMonitor
from bloomberg_style.model import BloomForCausalLM, ModelConfig, param_groups
from bloomberg_style.training.data_order import DataOrder
from bloomberg_style.training.faults import FaultDrills, parse_faults
from bloomberg_style.training.schedule import WarmupCosineSchedule
from bloomberg_style.training.state import ROLLBACK_KEEPS, EngineKnobs, RunState

pytestmark = pytest.mark.usefixtures("one_thread")


def make_state() -> tuple[RunState, BloomForCausalLM, torch.optim.Optimizer]:
    """A real tiny model and AdamW, held the way DeepSpeed's engine holds them."""
    model = BloomForCausalLM(
        ModelConfig(vocab_size=64, hidden_size=32, num_layers=2, num_heads=4, max_seq_len=16)
    )
    optimizer = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-3)
    engine = SimpleNamespace(module=model, optimizer=optimizer)
    state = RunState(
        WarmupCosineSchedule(1e-3, 1e-4, 2, 10),
        DataOrder(100),
        LRController(ControllerSection(mode="plateau", patience=2), {"a": 1.0}),
        SpikeMonitor(4, 3.0, 1.5, 3),
        EngineKnobs(engine, {"attention": 0.0, "hidden": 0.0}, 0.1),
    )
    return state, model, optimizer


def test_snapshot_restore_round_trips_and_reaches_the_engine():
    state, model, optimizer = make_state()
    saved = state.snapshot()
    state.counters.step, state.counters.best_tag = 7, "step_00000007"
    state.schedule.scale(0.5)
    state.order.reshuffle_from(40, 3)
    state.spikes.check(2.0, True)
    state.knobs.set_dropout(0.1, 0.2)
    state.knobs.set_weight_decay(0.05)
    assert state.snapshot() != saved
    state.restore(saved)
    assert state.snapshot() == saved
    assert model.transformer.h[0].hidden_dropout.p == 0.0
    assert model.transformer.h[0].self_attention.attention_dropout.p == 0.0
    assert sorted(g["weight_decay"] for g in optimizer.param_groups) == [0.0, 0.1]


def test_rollback_keeps_interventions_and_takes_the_rest_from_the_checkpoint():
    state, model, _ = make_state()
    checkpoint = state.snapshot()
    state.counters.step, state.counters.rollbacks, state.counters.best_tag = 9, 1, "step_00000008"
    state.schedule.scale(2 / 3)  # an LR drop after the checkpoint
    state.knobs.set_dropout(hidden=0.1)
    state.spikes.check(2.0, True)
    now = state.snapshot()
    state.load_checkpoint_state(checkpoint)
    state.restore({k: now[k] for k in ROLLBACK_KEEPS})
    after = state.snapshot()
    assert after["step"] == 0 and after["spikes"] == checkpoint["spikes"]
    for key in ROLLBACK_KEEPS:
        assert after[key] == now[key], key
    assert model.transformer.h[1].hidden_dropout.p == pytest.approx(0.1)


def test_checkpoint_without_a_part_is_refused():
    state, _, _ = make_state()
    snap = state.snapshot()
    del snap["controller"]
    with pytest.raises(KeyError, match="controller"):
        state.load_checkpoint_state(snap)


def test_fault_specs():
    assert parse_faults("nan@5, spike@9,kill@4") == {5: "nan", 9: "spike", 4: "kill"}
    with pytest.raises(ValueError, match="BLOOMBERG_STYLE_INJECT"):
        parse_faults("boom@3")
    drills = FaultDrills("nan@2")
    loss = torch.tensor(1.5)
    assert drills.corrupt_loss(1, loss) is loss
    assert torch.isnan(drills.corrupt_loss(2, loss))
    assert drills.corrupt_loss(2, loss) is loss  # once per process
