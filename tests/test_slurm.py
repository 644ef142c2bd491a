"""SLURM: the generated per-node command, and a real one-node Slurm (slurm-wlm on localhost)
running the job script for a few steps, a pre-emption signal, a requeue and the resume."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from bloomberg_style.config import ConfigError
from bloomberg_style.training.metrics import read_jsonl
from bloomberg_style.training.slurm import (
    FAILURES_FILE,
    expand_first,
    latest_step,
    launch_command,
    requeue_decision,
)
from tests.conftest import REPO, host_env, tiny_run_config

SLURM_ENV = {"SLURM_NNODES": "4", "SLURM_NODEID": "2", "SLURM_JOB_ID": "4242",
             "SLURM_JOB_NODELIST": "gpu[017-020]", "SLURM_GPUS_ON_NODE": "8"}  # fmt: skip


def test_launch_command_from_slurm_variables():
    cmd = launch_command({**SLURM_ENV, "MASTER_ADDR": "gpu017"}, "configs/x.yaml", ["train.steps=5"])
    joined = " ".join(cmd)
    assert "-m torch.distributed.run" in joined
    assert "--nnodes 4 --node-rank 2 --nproc-per-node 8" in joined
    assert "--rdzv-backend c10d --rdzv-endpoint gpu017:24242 --rdzv-id 4242" in joined
    assert joined.endswith("launch/pretrain.py --config configs/x.yaml --set train.steps=5")
    assert expand_first("gpu[017-020]") == "gpu017" and expand_first("node7,node8") == "node7"
    assert expand_first("a[1,3-4],b2") == "a1"


def test_job_scripts_parse_and_fail_outside_slurm():
    for script in ("pretrain.sbatch", "pretrain-single-node.sbatch"):
        subprocess.run(["bash", "-n", str(REPO / "launch" / "slurm" / script)], check=True)
    proc = subprocess.run(["python", "-m", "bloomberg_style.training.slurm", "--config",
                           "configs/pretrain/demo.yaml"], cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "not inside a SLURM job: SLURM_NNODES" in proc.stderr


def _have_slurm() -> bool:
    return all(shutil.which(t) for t in ("slurmctld", "slurmd", "munged", "sbatch")) and os.geteuid() == 0


@pytest.fixture
def slurm(tmp_path):
    state = tmp_path / "slurm"
    script = REPO / "launch" / "slurm" / "local_cluster.sh"
    out = subprocess.run(
        ["bash", str(script), "start", str(state)], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        pytest.fail(f"local Slurm did not start:\n{out.stdout}\n{out.stderr}")
    env = {**host_env(), "SLURM_CONF": str(state / "slurm.conf")}
    yield env
    subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True)
    subprocess.run(["bash", str(script), "stop", str(state)], capture_output=True)


def _squeue(env) -> str:
    """The queue; a squeue that fails (slurmctld busy) is asked again, never read as an empty queue."""
    for _ in range(30):
        done = subprocess.run(["squeue", "-h", "-o", "%i %T"], env=env, capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout
        time.sleep(1)
    raise AssertionError(f"squeue kept failing: {done.stderr}")


@pytest.mark.slow
@pytest.mark.skipif(not _have_slurm(), reason="needs root and Debian's slurm-wlm + munge installed")
def test_real_slurm_runs_preempts_requeues_and_resumes(tmp_path, small_data, slurm):
    cfg = tiny_run_config(tmp_path, small_data, name="slurm",
                          train={"steps": 300, "eval_interval": 1000, "save_interval": 1000, "log_interval": 1})  # fmt: skip
    run = tmp_path / "runs" / "slurm"
    submit = subprocess.run(
        ["sbatch", "--parsable", "--gpus-per-node=0", "--cpus-per-task=2", "--time=30",
         f"--output={tmp_path}/job-%j.out", "--export=ALL,GPUS_PER_NODE=2,DS_ACCELERATOR=cpu,OMP_NUM_THREADS=1",
         str(REPO / "launch" / "slurm" / "pretrain-single-node.sbatch"), str(cfg)],
        cwd=REPO, env=slurm, capture_output=True, text=True, check=True,
    )  # fmt: skip
    job = submit.stdout.strip().split(";")[0]
    deadline = time.time() + 240
    while time.time() < deadline and len([r for r in read_jsonl(run / "metrics.jsonl") if "loss" in r]) < 5:
        time.sleep(1)
    # What SLURM does before the time limit (--signal=B:USR1@600): signal the batch script.
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], env=slurm, check=True)
    deadline = time.time() + 180
    while time.time() < deadline and not any(
        e["event"] == "preempted" for e in read_jsonl(run / "events.jsonl")
    ):
        time.sleep(1)
    preempted = [e for e in read_jsonl(run / "events.jsonl") if e["event"] == "preempted"]
    assert preempted, (tmp_path / f"job-{job}.out").read_text()[-3000:]
    # The job requeued itself; Slurm starts it again after cred_expire (20 s in local_cluster.sh).
    # Forcing StartTime=now raced the old instance's revoked credential ("Job credential revoked").
    deadline = time.time() + 420
    while time.time() < deadline and _squeue(slurm).strip():
        time.sleep(2)
    log = (tmp_path / f"job-{job}.out").read_text()
    assert "requeueing job" in log and "restart 1" in log, log[-3000:]
    # The requeued job starts from the pre-emption checkpoint: the ending job did not go on training.
    assert f"-> {run} (checkpoint step {preempted[0]['step']})" in log.split("(restart 1)")[1], log[-3000:]
    steps = [r["step"] for r in read_jsonl(run / "metrics.jsonl") if "loss" in r]
    assert steps == list(range(1, 301)), log[-3000:]  # resumed where the checkpoint was, finished
    assert any(e["event"] == "resume" for e in read_jsonl(run / "events.jsonl"))


def test_launch_command_restarts_and_gives_the_save_its_grace():
    joined = " ".join(launch_command(SLURM_ENV, "c.yaml", []))
    assert "--max-restarts 3 --shutdown-timeout 600" in joined
    joined = " ".join(
        launch_command({**SLURM_ENV, "MAX_RESTARTS": "7", "STOP_GRACE_S": "1200"}, "c.yaml", [])
    )
    assert "--max-restarts 7 --shutdown-timeout 1200" in joined
    with pytest.raises(ConfigError, match="STOP_GRACE_S must be a whole number of seconds, got '10m'"):
        launch_command({**SLURM_ENV, "STOP_GRACE_S": "10m"}, "c.yaml", [])


def _checkpoint(run, step: int) -> None:
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run / "checkpoints" / "latest").write_text(f"step_{step:08d}\n")


def test_requeue_after_failures_until_no_progress_three_times(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert latest_step(run) == 0
    assert requeue_decision(run, 1, 0, 3)[0]  # failed before any checkpoint: 1 without progress
    _checkpoint(run, 300)
    ok, reason = requeue_decision(run, 1, 0, 3)  # failed, but after a newer checkpoint: counter reset
    assert ok and "0 -> 300" in reason and (run / FAILURES_FILE).read_text().strip() == "0"
    assert requeue_decision(run, 137, 300, 3)[0] and requeue_decision(run, 137, 300, 3)[0]
    ok, reason = requeue_decision(run, 137, 300, 3)  # the third job in a row that got nowhere
    assert not ok and "3 jobs in a row made no progress" in reason
    (run / "REQUEUE").write_text("SIGUSR1 at step 300\n")  # a clean pre-emption stop always requeues
    ok, reason = requeue_decision(run, 0, 300, 3)
    assert ok and "SIGUSR1 at step 300" in reason and not (run / "REQUEUE").exists()
    assert not (run / FAILURES_FILE).exists()
    assert requeue_decision(run, 0, 300, 3) == (False, "the run ended normally at checkpoint step 300")


def test_job_script_settings_a_user_can_override():
    text = (REPO / "launch" / "slurm" / "pretrain.sbatch").read_text()
    for setting in ("TORCH_NCCL_ASYNC_ERROR_HANDLING=${TORCH_NCCL_ASYNC_ERROR_HANDLING:-1}",
                    "DEEPSPEED_TIMEOUT=${DEEPSPEED_TIMEOUT:-30}", "MAX_RESTARTS=${MAX_RESTARTS:-3}",
                    "STOP_GRACE_S=${STOP_GRACE_S:-600}", "MAX_FAILED_REQUEUES=${MAX_FAILED_REQUEUES:-3}",
                    "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=${TORCH_DISABLE_SHARE_RDZV_TCP_STORE:-1}"):  # fmt: skip
        assert f"export {setting}" in text or f"{setting} " in text, setting


@pytest.mark.parametrize("srun_exit", [1, 0])
def test_job_script_requeues_after_a_failure_and_passes_cpus(tmp_path, small_data, srun_exit):
    """pretrain.sbatch end to end with srun/scontrol replaced by recorders (no Slurm here):
    srun gets --cpus-per-task, a failed srun requeues, a finished run does not."""
    cfg = tiny_run_config(tmp_path, small_data, name="job")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, code in (("srun", srun_exit), ("scontrol", 0)):
        (bin_dir / tool).write_text(f'#!/bin/bash\necho "$*" >> {tmp_path}/{tool}.calls\nexit {code}\n')
        (bin_dir / tool).chmod(0o755)
    env = {**host_env(), "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": sys.executable,
           "SLURM_JOB_ID": "77", "SLURM_CPUS_PER_TASK": "12", "SLURM_JOB_NODELIST": "n1", "SLURM_SUBMIT_DIR": str(REPO)}  # fmt: skip
    proc = subprocess.run(["bash", str(REPO / "launch" / "slurm" / "pretrain.sbatch"), str(cfg)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    srun = (tmp_path / "srun.calls").read_text()
    assert "--cpus-per-task=12" in srun and "--exec" in srun, proc.stdout + proc.stderr
    scontrol = (tmp_path / "scontrol.calls").read_text() if (tmp_path / "scontrol.calls").exists() else ""
    if srun_exit:
        assert "requeue 77" in scontrol and "without progress); requeueing" in proc.stdout, proc.stdout
        assert proc.returncode == 0
    else:
        assert scontrol == "" and "ended normally" in proc.stdout and proc.returncode == 0, proc.stdout
