"""The plateau controller on paper-shaped curves, through `--simulate-controller`.

The paper's run: validation loss flat from about step 96,900, a week of patience (18,600
steps), first LR drop at 115,500. The curves here are a power law that stops improving
at 96,900, with uniform noise of +-0.002 nats on every evaluation.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bloomberg_style.config import RunConfig
from bloomberg_style.controllers import PlateauDetector
from bloomberg_style.controllers.simulate import read_curve, simulate
from tests.conftest import REPO, run_script

PAPER = REPO / "configs" / "pretrain" / "bloomberggpt-50b.yaml"
CHRONICLE = REPO / "configs" / "pretrain" / "bloomberggpt-50b-chronicle.yaml"


def paper_curve(seed: int, flat_from: int = 96_900, noise: float = 0.002, end: int = 146_000):
    """Validation loss every 300 steps: improving until `flat_from`, then flat, plus noise."""
    rng = np.random.default_rng(seed)
    steps = np.arange(300, end + 1, 300)
    clean = 1.7 + 10.0 * np.minimum(steps, flat_from) ** -0.3
    return [(int(s), float(v)) for s, v in zip(steps, clean + rng.uniform(-noise, noise, len(steps)))]


@pytest.mark.parametrize("seed", range(5))
def test_paper_config_first_drop_lands_near_the_papers_step(seed):
    decisions = simulate(RunConfig.load(PAPER), paper_curve(seed))
    first = decisions[0]
    assert 114_000 <= first["step"] <= 117_000, decisions
    assert first["lr_factor"] == pytest.approx(2 / 3) and first["rollback_to_step"] is not None
    assert 95_000 <= first["plateau_start_step"] <= 98_500  # rolls back to where it went flat
    # The next plateau is measured from the drop: a week later on the same flat curve.
    assert decisions[1]["step"] - first["step"] == pytest.approx(18_600, abs=600)


def test_flat_noisy_curve_does_not_keep_resetting_patience():
    """Flat from the start: chance new minima must not push the drop past the patience."""
    cfg = RunConfig.load(PAPER)
    for seed in range(5):
        curve = paper_curve(seed, flat_from=300, end=60_000)
        first = simulate(cfg, curve)[0]["step"]
        assert 18_600 <= first <= 18_600 + 3_000, (seed, first)
    # The plain "new best" rule (threshold 0) on the same curves waits much longer at times.
    cfg.controller.threshold = 0.0
    plain = [simulate(cfg, paper_curve(seed, flat_from=300, end=60_000))[0]["step"] for seed in range(5)]
    assert max(plain) > 18_600 + 3_000


def test_per_step_smoothing_does_not_depend_on_the_eval_interval():
    """0.001 per step: one evaluation 300 steps later weighs 1 - 0.999**300, not 0.001."""
    coarse = PlateauDetector(patience=10**9, alpha=0.001)
    fine = PlateauDetector(patience=10**9, alpha=0.001)
    coarse.update(3.0, 0, 0)
    fine.update(3.0, 0, 0)
    coarse.update(2.0, 300, 300, elapsed=300)
    for step in range(100, 301, 100):
        fine.update(2.0, step, step, elapsed=100)
    assert coarse.smoothed == pytest.approx(fine.smoothed)
    assert coarse.smoothed == pytest.approx(3.0 - (1 - 0.999**300))


def test_per_eval_smoothing_is_what_the_paper_config_used_to_do():
    """Per evaluation, 0.001 can never flatten: the old reading of the paper's setting."""
    cfg = RunConfig.load(PAPER, ["controller.smoothing_unit=evals"])
    assert simulate(cfg, paper_curve(0)) == []


def test_chronicle_replays_the_papers_steps():
    cfg = RunConfig.load(CHRONICLE)
    curve = paper_curve(0) + [(146_000, 2.02)]
    decisions = simulate(cfg, curve)
    assert [d["step"] for d in decisions] == [115_500, 129_900, 137_100, 146_000]
    assert [d["lr_factor"] for d in decisions[:3]] == [0.6667, 0.5, 0.5]
    assert decisions[-1]["stop"] and decisions[-1]["peak_lr"] == pytest.approx(6e-5 * 0.6667 / 4)
    assert RunConfig.load(PAPER).to_dict()["data"] == cfg.to_dict()["data"]  # the same run otherwise


def test_simulate_controller_cli_prints_one_json_decision_per_line(tmp_path):
    curve = tmp_path / "curve.csv"
    curve.write_text("step,loss\n" + "".join(f"{s},{v}\n" for s, v in paper_curve(1)))
    assert read_curve(curve)[0][0] == 300
    proc = run_script("pretrain.py", ["--config", str(PAPER), "--simulate-controller", str(curve)])
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines and all({"step", "label", "lr_factor"} <= set(d) for d in lines)
    assert 114_000 <= lines[0]["step"] <= 117_000 and lines[0]["label"] == "LR x2/3"
    bad = tmp_path / "bad.csv"
    bad.write_text("step,loss\n300,2.0\n200,1.9\n")
    proc = run_script("pretrain.py", ["--config", str(PAPER), "--simulate-controller", str(bad)])
    assert proc.returncode == 2 and "bad.csv:3" in proc.stderr and "Traceback" not in proc.stderr
