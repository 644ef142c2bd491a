"""The evaluation budget: a cap on the tokens one evaluation scores, and its printed cost."""

from __future__ import annotations

import re

import pytest

from bloomberg_style.config import ConfigError, RunConfig
from bloomberg_style.training.eval_budget import eval_overhead, eval_samples_per_domain
from tests.conftest import REPO, run_script

PAPER = REPO / "configs" / "pretrain" / "bloomberggpt-50b.yaml"


def test_paper_config_evaluation_costs_under_five_percent():
    cfg = RunConfig.load(PAPER)
    assert eval_overhead(cfg)["fraction"] <= 0.05
    # Scoring the whole 0.5% split (~3.5B tokens) every 300 steps: the ~70% the issue measured.
    whole = RunConfig.load(PAPER, ["train.eval_tokens=3500000000"])
    assert 0.6 < eval_overhead(whole)["fraction"] < 0.8


def test_cap_splits_over_domains_and_keeps_eval_samples():
    cfg = RunConfig.load(PAPER, ["train.eval_tokens=1048576"])  # 2^20 tokens over 8 domains
    assert eval_samples_per_domain(cfg, 10**6, 8) == 1048576 // (8 * 2048) == 64
    assert eval_samples_per_domain(cfg, 10, 8) == 10  # a small split is scored whole
    cfg.train.eval_samples = 5
    assert eval_samples_per_domain(cfg, 10**6, 8) == 5
    cfg.train.eval_tokens = 0
    assert eval_samples_per_domain(cfg, 10**6, 8) == 5
    cfg.train.eval_samples = 0
    assert eval_samples_per_domain(cfg, 10**6, 8) == 10**6
    assert eval_overhead(cfg)["fraction"] == float("inf")  # nothing bounds it: said so
    with pytest.raises(ConfigError, match="train.eval_tokens"):
        RunConfig.load(PAPER, ["train.eval_tokens=-1"])


def test_dry_run_prints_the_evaluation_share():
    proc = run_script("pretrain.py", ["--config", str(PAPER), "--dry-run"])
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("evaluation:"))
    percent = float(re.search(r"~([\d.]+)% of training time", line).group(1))
    assert 0 < percent <= 5.0
    proc = run_script("pretrain.py", ["--config", str(PAPER), "--dry-run", "--set", "train.eval_tokens=0"])
    assert "evaluation: no bound on its cost" in proc.stdout
