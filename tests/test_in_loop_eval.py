"""Task files scored during pretraining (eval.tasks), through launch/pretrain.py as users run it."""

from __future__ import annotations

import pytest

from bloomberg_style.demo.tasks import write_demo_tasks
from bloomberg_style.training.metrics import read_jsonl
from tests.conftest import run_launcher, tiny_run_config

pytestmark = pytest.mark.slow


def task_records(run_dir) -> dict[int, dict[str, float]]:
    return {
        r["step"]: {k: v for k, v in r.items() if k.startswith("task/")}
        for r in read_jsonl(run_dir / "metrics.jsonl")
        if any(k.startswith("task/") for k in r)
    }


@pytest.mark.parametrize("ranks,zero_stage", [(1, 2), (2, 3)])
def test_task_scores_logged_and_plotted(tmp_path, small_data, ranks, zero_stage):
    """Scores at step 0, every task_interval steps and the last step; task_scores.png beside loss.png.

    ZeRO-3 on two ranks: every rank runs the forwards (shards are gathered collectively), so
    a rank-0-only scorer would hang here instead of finishing.
    """
    fpb, headline = write_demo_tasks(tmp_path / "tasks", n_train=8, n_test=6)
    cfg = tiny_run_config(
        tmp_path,
        small_data,
        name=f"tasks{zero_stage}",
        train={"steps": 4, "eval_interval": 4, "save_interval": 4, "zero_stage": zero_stage},
        eval={"tasks": [str(fpb), str(headline)], "task_interval": 2, "task_limit": 4, "task_shots": 1},
    )
    run_launcher(["--config", str(cfg)], ranks=ranks)
    run = tmp_path / "runs" / f"tasks{zero_stage}"
    scores = task_records(run)
    assert sorted(scores) == [0, 2, 4]
    for step, values in scores.items():
        assert sorted(values) == ["task/fpb-demo", "task/headline-demo"], step
        assert all(0.0 <= v <= 1.0 for v in values.values())
    assert (run / "task_scores.png").stat().st_size > 5_000
    assert (run / "loss.png").is_file()
    # The controller and best checkpoint still read only the held-out loss.
    valid = [r for r in read_jsonl(run / "metrics.jsonl") if "valid/financial/loss" in r]
    assert [r["step"] for r in valid] == [0, 4]


def test_bad_task_file_fails_before_training(tmp_path, small_data):
    """A task file that does not parse is reported with its name, exit 2, nothing trained."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "x", "prompt": "{text}"}\nnot json\n', encoding="utf-8")
    cfg = tiny_run_config(tmp_path, small_data, name="bad", eval={"tasks": [str(bad)], "task_interval": 2})
    from tests.conftest import run_script

    proc = run_script("pretrain.py", ["--config", str(cfg)])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "bad.jsonl" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs" / "bad" / "metrics.jsonl").exists()


def test_run_pretraining_without_a_scorer_refuses_task_files(tmp_path, small_data):
    """training/ cannot import evaluation/: without the caller's scorer, eval.tasks is an error, not ignored."""
    from bloomberg_style.config import ConfigError, RunConfig
    from bloomberg_style.training.pretrain import run_pretraining

    (fpb, _) = write_demo_tasks(tmp_path / "tasks", n_train=2, n_test=2)
    path = tiny_run_config(
        tmp_path, small_data, name="noscorer", eval={"tasks": [str(fpb)], "task_interval": 2}
    )
    with pytest.raises(ConfigError, match="eval.tasks"):
        run_pretraining(RunConfig.load(path))
