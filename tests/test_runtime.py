"""The pretraining runtime under faults: the paper's config, ramp, kill -9, NaN, spikes,
pre-emption, resharding. Real DeepSpeed engines on gloo ranks throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bloomberg_style.config import RunConfig
from bloomberg_style.training import checkpoint as ckpt
from bloomberg_style.training.metrics import read_jsonl
from bloomberg_style.training.preemption import GAVE_UP_FILE, REQUEUE_EXIT_CODE
from bloomberg_style.training.slurm import requeue_decision
from tests.conftest import (
    REPO,
    host_env,
    launch_command,
    launch_env,
    losses,
    run_launcher,
    run_script,
    stopped_at,
    tiny_run_config,
)

PAPER = REPO / "configs" / "pretrain" / "bloomberggpt-50b.yaml"


def events(run: Path, kind: str) -> list[dict]:
    return [e for e in read_jsonl(run / "events.jsonl") if e["event"] == kind]


# ---- the paper's configuration -------------------------------------------------------
def test_paper_config_as_the_engine_sees_it():
    """Every value of BloombergGPT's run, read back through DeepSpeed's own config parser."""
    from deepspeed.runtime.config import DeepSpeedConfig

    from bloomberg_style.model import ModelConfig
    from bloomberg_style.training.deepspeed_config import build_deepspeed_config, mics_available
    from bloomberg_style.training.distributed import init_distributed
    from bloomberg_style.training.schedule import WarmupCosineSchedule

    init_distributed()  # DeepSpeed's config parser asks the process group for this rank
    cfg = RunConfig.load(PAPER)
    ds = build_deepspeed_config(cfg, world_size=512, accelerator="cuda")

    class DataParallel512:  # DeepSpeed asks the mpu for the data-parallel size
        def get_data_parallel_world_size(self):
            return 512

        def get_model_parallel_world_size(self):
            return 1

        def get_data_parallel_rank(self):
            return 0

    seen = DeepSpeedConfig(ds, mpu=DataParallel512())
    assert seen.zero_optimization_stage == 3
    # Sharded within groups of 128 GPUs: 4 replicas on 512 (MiCS, or ZeRO++ hpZ where MiCS is gone).
    if mics_available():
        assert seen.mics_shard_size == 128
    else:
        assert seen.zero_config.zero_hpz_partition_size == 128
    assert seen.bfloat16_config.enabled and not seen.float16_config.enabled
    assert seen.optimizer_name == "adamw"
    assert seen.optimizer_params["betas"] == [0.9, 0.95]
    assert seen.optimizer_params["weight_decay"] == 0.1
    assert seen.gradient_clipping == 0.3
    assert seen.train_batch_size == 1024 and seen.train_micro_batch_size_per_gpu == 2
    assert seen.gradient_accumulation_steps == 1
    assert cfg.train.global_batch_at(7199) == 1024 and cfg.train.global_batch_at(7200) == 2048
    assert cfg.train.grad_accumulation(512, 2048) == 2
    assert cfg.train.activation_checkpointing and cfg.data.seq_len == 2048
    sched = WarmupCosineSchedule(cfg.optim.lr, cfg.optim.min_lr, cfg.optim.warmup_steps,
                                 cfg.train.steps - cfg.optim.warmup_steps)  # fmt: skip
    assert sched.lr_at(1799) == pytest.approx(6e-5) and sched.lr_at(0) == pytest.approx(6e-5 / 1800)
    assert sched.lr_at(cfg.train.steps) == pytest.approx(6e-6)
    model = ModelConfig.from_run(cfg, 131072)
    assert model == ModelConfig.preset("bloomberggpt-50b", max_seq_len=2048, activation_checkpointing=True)
    assert model.num_parameters() == 50_558_868_480
    # 139,200 steps of the ramp: 7,200 x 1,024 + 132,000 x 2,048 sequences of 2,048 tokens = 569B tokens.
    assert cfg.train.samples_before(139_200) * 2048 == pytest.approx(569e9, rel=0.002)


def test_deepspeed_json_cannot_contradict_the_run(tmp_path):
    from bloomberg_style.config import ConfigError
    from bloomberg_style.training.deepspeed_config import build_deepspeed_config

    bad = tmp_path / "ds.json"
    bad.write_text(json.dumps({"gradient_clipping": 1.0}))
    cfg = RunConfig.load(PAPER, [f"train.deepspeed_json={bad}"])
    with pytest.raises(ConfigError, match="gradient_clipping=1.0 contradicts"):
        build_deepspeed_config(cfg, 512, "cuda")


# ---- checkpoints ---------------------------------------------------------------------
def test_damaged_latest_falls_back_with_a_message(tmp_path):
    ckpts = tmp_path / "checkpoints"
    for step in (4, 8):
        folder = ckpts / ckpt.tag_for_step(step)
        folder.mkdir(parents=True)
        (folder / ckpt.STATE_FILE).write_text(json.dumps({"step": step}))
    (ckpts / ".tmp-step_00000012").mkdir()  # a crash mid-save: never complete
    (ckpts / "latest").write_text("step_00000008\n")
    assert ckpt.find_resume_checkpoint(ckpts).name == "step_00000008"
    (ckpts / "step_00000008" / ckpt.STATE_FILE).write_text("{truncated")
    messages = []
    assert ckpt.find_resume_checkpoint(ckpts, log=messages.append).name == "step_00000004"
    assert "missing or damaged" in messages[0]
    (ckpts / "latest").write_text("step_00000099\n")
    assert ckpt.find_resume_checkpoint(ckpts, log=messages.append).name == "step_00000004"


@pytest.mark.slow
def test_damaged_checkpoint_files_fall_back_to_the_previous_one(tmp_path, small_data):
    cfg = tiny_run_config(tmp_path, small_data, name="damaged", train={"steps": 8, "save_interval": 4})
    run_launcher(["--config", str(cfg)])
    run = tmp_path / "runs" / "damaged"
    before = losses(run)
    states = run / "checkpoints" / "step_00000008" / "mp_rank_00_model_states.pt"
    states.write_bytes(states.read_bytes()[:1000])  # a disk that lost the end of the file
    out = run_launcher(["--config", str(cfg)]).stdout
    assert "step_00000008 could not be loaded" in out and "falling back" in out
    assert "resumed from" in out and "step_00000004 at step 4" in out
    after = losses(run)
    assert all(after[s] == before[s] for s in range(5, 9))  # steps 5-8 redone identically


@pytest.mark.slow
def test_resume_with_another_model_shape_is_refused(tmp_path, small_data):
    cfg = tiny_run_config(tmp_path, small_data, name="shape", train={"steps": 2, "save_interval": 2})
    run_launcher(["--config", str(cfg)])
    with pytest.raises(AssertionError, match="model shape changed"):
        run_launcher(
            ["--config", str(cfg), "--set", "train.steps=4", "--set", "model.overrides.hidden_size=32"]
        )


# ---- faults --------------------------------------------------------------------------
@pytest.mark.slow
def test_nan_step_is_skipped_and_spike_rolls_back(tmp_path, small_data):
    cfg = tiny_run_config(
        tmp_path, small_data, name="faults",
        train={"steps": 12, "save_interval": 4, "eval_interval": 12},
        faults={"spike_window": 3, "spike_sigma": 3.0, "spike_min_ratio": 1.5},
    )  # fmt: skip
    run_launcher(["--config", str(cfg)], env={"BLOOMBERG_STYLE_INJECT": "nan@3,spike@10"})
    run = tmp_path / "runs" / "faults"
    skipped = events(run, "skip_step")
    assert [e["step"] for e in skipped] == [3]
    spikes, rollbacks = events(run, "loss_spike"), events(run, "rollback")
    assert [e["step"] for e in spikes] == [10]
    assert rollbacks[0]["to_checkpoint"] == "step_00000008" and rollbacks[0]["from_step"] == 10
    state = json.loads((run / "checkpoints" / "step_00000012" / "trainer_state.json").read_text())
    assert state["skipped_steps"] == 1 and state["rollbacks"] == 1
    assert state["skipped_windows"] == [[8 * 4, 10 * 4]]  # the spike's data is jumped over
    assert state["consumed_samples"] == 14 * 4  # 12 steps + the 2-step skipped window
    assert state["tokens_seen"] == 11 * 4 * 64  # the NaN step trained on nothing


@pytest.mark.slow
def test_giving_up_leaves_a_marker_that_restarts_and_requeues_respect(tmp_path, small_data):
    """Out of rollbacks: exit 1 and a GAVE_UP file; a restart refuses at once (exit 2, the file
    named), Slurm does not requeue; deleting the file resumes the run."""
    cfg = tiny_run_config(
        tmp_path, small_data, name="gives_up",
        train={"steps": 12, "save_interval": 4, "eval_interval": 12},
        faults={"spike_window": 3, "spike_sigma": 3.0, "spike_min_ratio": 1.5, "max_rollbacks": 0},
    )  # fmt: skip
    run = tmp_path / "runs" / "gives_up"
    first = run_script("pretrain.py", ["--config", str(cfg)], env={"BLOOMBERG_STYLE_INJECT": "spike@10"})
    assert first.returncode == 1, (first.stdout + first.stderr)[-3000:]
    marker = (run / GAVE_UP_FILE).read_text()
    assert marker.startswith("step 10: loss ") and "0 rollbacks already, giving up" in marker
    assert [e["step"] for e in events(run, "gave_up")] == [10] and not events(run, "rollback")
    again = run_script("pretrain.py", ["--config", str(cfg)])
    assert again.returncode == 2 and "Traceback" not in again.stderr, again.stderr[-3000:]
    assert f"{run / GAVE_UP_FILE}: this run gave up (step 10: loss " in again.stderr
    requeue, why = requeue_decision(run, 1, 8, 3)
    assert not requeue and "the run gave up (step 10" in why
    (run / GAVE_UP_FILE).unlink()
    run_launcher(["--config", str(cfg)])  # the way out the message gives: resumes at step 8
    assert sorted(losses(run)) == list(range(1, 13)) and events(run, "resume")


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_for_requeue(tmp_path, small_data):
    cfg = tiny_run_config(tmp_path, small_data, name="preempt", train={"steps": 400, "save_interval": 1000})
    env = {**host_env(), "DS_ACCELERATOR": "cpu", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(REPO / "launch" / "pretrain.py"), "--config", str(cfg)],
                            env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    run = tmp_path / "runs" / "preempt"
    deadline = time.time() + 120
    while time.time() < deadline and len(losses(run)) < 3:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == REQUEUE_EXIT_CODE, out[-3000:]
    latest = ckpt.find_resume_checkpoint(run / "checkpoints")
    assert latest is not None and events(run, "preempted")
    step = ckpt.read_trainer_state(latest)["step"]
    assert step >= 3
    # The requeued job resumes from there.
    out = run_launcher(["--config", str(cfg), "--set", f"train.exit_at_step={step + 2}"]).stdout
    assert f"at step {step}" in out


# ---- kill -9 -------------------------------------------------------------------------
def _launch(cfg: Path, ranks: int, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(launch_command("pretrain.py", ["--config", str(cfg)], ranks), env=launch_env(env),
                            cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


def _run_until_killed(cfg: Path, env: dict, timeout: float = 300) -> None:
    """Run on 2 ranks until the injected SIGKILL takes the ranks down (the job must not finish)."""
    proc = _launch(cfg, 2, env=env)
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # The ranks died by SIGKILL; the launcher above them then fails (or dies with them).
    assert proc.returncode != 0, "the job finished although a SIGKILL was injected"


# ZeRO-3 takes a kill mid-checkpoint and then one between steps of the resumed run (a kill
# between steps before any resume is the same case one resume earlier). ZeRO-2 takes the one
# whose outcome depends on the stage's own checkpoint files (shards written, not yet
# published); a kill between steps resumes from the last published checkpoint exactly as a
# clean resume does (test_pretrain's resume test, ZeRO-2).
KILLS = {
    3: [("kill_in_save@6", "step_00000003"), ("kill@8", "step_00000006")],
    2: [("kill_in_save@6", "step_00000003")],
}


@pytest.mark.slow
@pytest.mark.parametrize("zero_stage", [2, 3])
def test_kill9_at_any_point_resumes_exactly(tmp_path, small_data, zero_stage):
    """2 ranks; SIGKILL of the whole job between steps and mid-checkpoint; the same losses."""
    common = {"steps": 12, "save_interval": 3, "eval_interval": 100, "zero_stage": zero_stage,
              "batch_ramp": [[0, 4], [5, 8]]}  # fmt: skip
    straight = tiny_run_config(tmp_path, small_data, name="straight", train=common)
    run_launcher(["--config", str(straight)], ranks=2)
    killed = tiny_run_config(tmp_path, small_data, name="killed", train=common)
    run = tmp_path / "runs" / "killed"

    # kill_in_save@6: SIGKILL of the whole job (launcher and both ranks) after writing
    # checkpoint 6's shards, before publishing it, so latest stays at 3. kill@8: the resumed
    # run is killed right after step 8, between checkpoints 6 and 9.
    for inject, latest in KILLS[zero_stage]:
        _run_until_killed(killed, {"BLOOMBERG_STYLE_INJECT": inject})
        assert (run / "checkpoints" / "latest").read_text().strip() == latest, inject
    run_launcher(["--config", str(killed)], ranks=2)

    a, b = losses(tmp_path / "runs" / "straight"), losses(run)
    assert sorted(a) == sorted(b) == list(range(1, 13))
    assert max(abs(a[s] - b[s]) for s in a) == 0.0
    assert len(events(run, "resume")) >= len(KILLS[zero_stage])


@pytest.mark.slow
def test_reshard_two_ranks_to_one_and_another_zero_stage(tmp_path, small_data):
    """A ZeRO-2 checkpoint from 2 ranks resumes on 1 rank with ZeRO-1 via the universal format."""
    common = {"steps": 8, "save_interval": 4, "eval_interval": 100}
    straight = tiny_run_config(tmp_path, small_data, name="straight", train=common)
    run_launcher(["--config", str(straight)], ranks=2)
    moved = tiny_run_config(tmp_path, small_data, name="moved", train=common)
    stopped_at(tmp_path / "runs" / "straight", tmp_path / "runs" / "moved", 4)  # 2 ranks, ZeRO-2
    out = run_launcher(["--config", str(moved), "--set", "train.zero_stage=1"]).stdout
    assert "resharding step_00000004" in out
    assert (tmp_path / "runs" / "moved" / "checkpoints" / "step_00000004" / "universal").is_dir()
    a, b = losses(tmp_path / "runs" / "straight"), losses(tmp_path / "runs" / "moved")
    assert sorted(b) == list(range(1, 9))
    # Steps 6-8 depend on the restored weights AND Adam moments; a reset moment would show.
    for s in range(5, 9):
        assert b[s] == pytest.approx(a[s], rel=1e-5, abs=1e-5)
