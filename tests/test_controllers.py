"""Controllers: plateau detection on scripted loss streams, the paper's chronicle, and real
runs whose LR, dropout, rollback and best checkpoint the DeepSpeed engine really gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bloomberg_style.config import ConfigError, ControllerSection, RunConfig, paper_actions
from bloomberg_style.controllers import LRController, PlateauDetector, SpikeMonitor
from bloomberg_style.controllers.policy import PAPER_CHRONICLE
from bloomberg_style.training.data_order import DataOrder
from bloomberg_style.training.metrics import read_jsonl
from bloomberg_style.training.pretrain import DEMO_CONFIG
from tests.conftest import run_launcher, tiny_run_config


def test_detector_fires_at_the_exact_step():
    d = PlateauDetector(patience=300, threshold=0.01)
    stream = [(300, 3.0), (600, 2.5), (900, 2.495), (1200, 2.6), (1500, 2.4)]
    fired = [step for step, loss in stream if d.update(loss, step)]
    assert fired == [900, 1200]  # 2.495 is not 0.01 better than 2.5: flat since 600
    assert d.best == 2.4 and d.since == 1500  # 2.4 is an improvement: a new window
    assert not d.update(2.395, 1700)
    assert d.update(2.395, 1800)  # 300 flat since 1500
    d.reset(1800, step=1800)
    assert not d.update(2.38, 2000)  # 0.02 better than 2.4: an improvement
    assert d.best == 2.38 and d.since == 2000


def test_detector_smoothing_and_tokens():
    d = PlateauDetector(patience=4096, alpha=0.5)
    assert not d.update(4.0, 0)
    assert not d.update(2.0, 2048)  # smoothed 3.0
    assert d.smoothed == 3.0
    assert not d.update(3.0, 4096)  # smoothed 3.0: no improvement, 2048 tokens flat
    assert d.update(3.0, 6144)  # 4096 tokens flat


def test_plateau_policy_applies_actions_in_order_then_stops():
    cfg = ControllerSection(mode="plateau", patience=2, metric="total")
    ctl = LRController(cfg, {"financial": 0.5, "general": 0.5})
    flat = {"financial": 2.0, "general": 2.0}
    decisions = [ctl.on_eval(step, step * 100, flat) for step in range(0, 12)]
    fired = [(i, d.action.label if d.action else "stop") for i, d in enumerate(decisions) if d]
    assert fired == [(2, "LR x2/3"), (4, "LR x1/2, dropout 0.1"), (6, "LR x1/2"), (8, "stop")]
    assert decisions[8].stop and ctl.stopped
    assert decisions[2].numbers["flat_for"] == 2 and decisions[2].action.rollback


def test_weighted_total_uses_domain_weights():
    ctl = LRController(ControllerSection(mode="plateau"), {"financial": 3.0, "general": 1.0})
    assert ctl.metric({"financial": 2.0, "general": 6.0}) == pytest.approx(3.0)


def test_paper_chronicle_replays_scaled():
    actions = [a for a in paper_actions()]
    for action, step in zip(actions, PAPER_CHRONICLE["steps"]):
        action.step = step
    scale = 200 / PAPER_CHRONICLE["stop"]
    cfg = ControllerSection(mode="scripted", actions=actions, scale=scale, stop_step=PAPER_CHRONICLE["stop"])
    cfg.validate()
    ctl = LRController(cfg, {"a": 1.0})
    fired = {step: d for step in range(1, 250) if (d := ctl.on_step(step))}
    assert sorted(fired) == [158, 178, 188, 200]
    assert fired[158].action.lr_factor == pytest.approx(2 / 3) and fired[158].action.rollback
    assert fired[178].action.hidden_dropout == 0.1 and fired[200].stop
    # At full scale: 6e-5 -> 4e-5 -> 2e-5 -> 1e-5, as in the paper.
    lr = 6e-5
    for step in sorted(fired)[:3]:
        lr *= fired[step].action.lr_factor
    assert lr == pytest.approx(1e-5)


@pytest.mark.parametrize(
    "override, message",
    [
        ("controller.actions=[{lr_factr: 0.5}]", r"unknown key\(s\) \['lr_factr'\]"),
        ("controller.actions=[{lr_factor: 0}]", r"controller.actions\[0\].lr_factor must be > 0"),
        ("controller.patience=0", "controller.patience must be >= 1"),
        ("controller.mode=sometimes", "controller.mode"),
        ("controller.metric=legal", "neither 'total' nor a domain"),
        ("controller.actions=[{step: 0}]", None),  # fine in plateau mode...
    ],
)
def test_bad_controller_config_is_refused(override, message):
    if message is None:
        RunConfig.load(DEMO_CONFIG, ["controller.mode=plateau", override])
        with pytest.raises(ConfigError, match="scripted mode needs increasing steps"):
            RunConfig.load(DEMO_CONFIG, ["controller.mode=scripted", override])
        return
    with pytest.raises(ConfigError, match=message):
        RunConfig.load(DEMO_CONFIG, [override])


def test_spike_monitor():
    m = SpikeMonitor(window=4, sigma=3.0, min_ratio=1.2, max_skips=2)
    for loss in (3.0, 3.1, 2.9, 3.0):
        assert m.check(loss, True) is None
    assert m.check(3.05, True) is None
    assert "loss 9.0000" in m.check(9.0, True)
    assert m.check(float("nan"), False) is None
    assert "2 non-finite steps" in m.check(float("nan"), False)


def test_reshuffle_is_a_permutation_of_the_unseen_data():
    order = DataOrder(1000)
    order.reshuffle_from(400, seed=7)
    mapped = [order.index(p) for p in range(1000)]
    assert mapped[:400] == list(range(400))  # what was seen stays
    assert sorted(mapped[400:]) == list(range(400, 1000)) and mapped[400:] != list(range(400, 1000))
    order.reshuffle_from(700, seed=8)
    again = [order.index(p) for p in range(1000)]
    assert again[:700] == mapped[:700] and sorted(again) == list(range(1000))


# ---- real runs -------------------------------------------------------------------------
def _events(run: Path, kind: str) -> list[dict]:
    return [e for e in read_jsonl(run / "events.jsonl") if e["event"] == kind]


def _metrics(run: Path, first: bool = False) -> dict[int, dict]:
    """Per step, the last (or first) record of each key: a rollback re-runs steps."""
    out: dict[int, dict] = {}
    for r in read_jsonl(run / "metrics.jsonl"):
        row = out.setdefault(r["step"], {})
        row.update({k: v for k, v in r.items() if not (first and k in row)})
    return out


PLATEAU = {
    "mode": "plateau",
    "patience": 2,
    "threshold": 10.0,  # nothing counts as an improvement: every eval after the patience is a plateau
    "actions": [
        {"lr_factor": 0.5, "attention_dropout": 0.1, "hidden_dropout": 0.2, "label": "drop"},
        {"lr_factor": 0.5, "rollback": True, "weight_decay": 0.05, "label": "drop+rollback"},
    ],
}


@pytest.mark.slow
def test_plateau_drop_reaches_the_engine_and_rollback_reshuffles(tmp_path, small_data):
    cfg = tiny_run_config(
        tmp_path, small_data, name="ctl",
        optim={"lr": 2e-3, "min_lr": 2e-3, "warmup_steps": 0},  # constant LR: drops are visible
        train={"steps": 12, "eval_interval": 2, "save_interval": 2, "keep_last": 1},
        controller=PLATEAU,
    )  # fmt: skip
    run_launcher(["--config", str(cfg)])
    run = tmp_path / "runs" / "ctl"
    drops = _events(run, "lr_drop")
    assert [(e["step"], e["label"]) for e in drops] == [(2, "drop"), (4, "drop+rollback")]
    assert drops[0]["peak_lr_before"] == pytest.approx(2e-3) and drops[0]["peak_lr_after"] == pytest.approx(
        1e-3
    )
    m, m_first = _metrics(run), _metrics(run, first=True)
    # What the engine holds after the first drop: LR, dropout.
    assert m_first[3]["engine/lr"] == pytest.approx(1e-3)
    assert m[3]["engine/lr"] == pytest.approx(5e-4) and m[3]["engine/attention_dropout"] == 0.1
    assert m[3]["engine/hidden_dropout"] == 0.2 and m[1]["engine/hidden_dropout"] == 0.0
    # The second plateau rolled back to the checkpoint where its window began (the 1st drop)...
    rollback = _events(run, "rollback")[0]
    assert (
        rollback["to_checkpoint"] == "step_00000002" and rollback["from_step"] == 4 and rollback["reshuffled"]
    )
    assert m[4]["engine/lr"] == pytest.approx(5e-4) and m[4]["engine/weight_decay"] == 0.05
    # ...and kept the best checkpoint although keep_last is 1.
    best = json.loads((run / "summary.json").read_text())["best_checkpoint"]
    assert best and (run / "checkpoints" / best).is_dir()
    from bloomberg_style.artifacts import resolve_checkpoint

    assert resolve_checkpoint(run).name == best  # export and evaluation take the best by default
    # Actions exhausted and still flat: the controller stops the run before train.steps.
    assert _events(run, "stop") and json.loads((run / "summary.json").read_text())["step"] < 12
    state = json.loads((run / "checkpoints" / "latest").read_text().strip() and
                       (run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
                        / "trainer_state.json").read_text())  # fmt: skip
    assert state["data_order"]["reshuffles"] == [[2 * 4, 1234 + 1000]]
    assert state["dropout"] == {"attention": 0.1, "hidden": 0.2}
    assert (run / "loss.png").stat().st_size > 10_000


@pytest.mark.slow
def test_resume_mid_plateau_makes_the_same_decisions(tmp_path, small_data):
    kwargs = {
        "optim": {"lr": 2e-3, "min_lr": 2e-3, "warmup_steps": 0},
        "train": {"steps": 12, "eval_interval": 2, "save_interval": 2, "keep_last": 2},
        "controller": PLATEAU,
    }
    straight = tiny_run_config(tmp_path, small_data, name="straight", **kwargs)
    run_launcher(["--config", str(straight)])
    broken = tiny_run_config(tmp_path, small_data, name="broken", **kwargs)
    run_launcher(["--config", str(broken), "--set", "train.exit_at_step=3"])  # inside the 1st plateau
    run_launcher(["--config", str(broken)])

    def decisions(name):
        return [(e["step"], e["event"], e.get("label")) for e in read_jsonl(tmp_path / "runs" / name / "events.jsonl")
                if e["event"] in ("lr_drop", "rollback", "stop", "best")]  # fmt: skip

    assert decisions("straight") == decisions("broken")
    a, b = _metrics(tmp_path / "runs" / "straight"), _metrics(tmp_path / "runs" / "broken")
    assert {s: r.get("loss") for s, r in a.items()} == {s: r.get("loss") for s, r in b.items()}
