"""Automatic restart: `torchrun --max-restarts` brings a 2-rank run back after ONE rank's process
is SIGKILLed, every time, and after a hang the watchdog ended, with every step's loss equal to
an uninterrupted run; a pre-empted run under torchrun stays stopped."""

from __future__ import annotations

import glob
import mmap
import os
import subprocess
import sys
import time

import pytest

from bloomberg_style.training.distributed import free_port, remove_stale_shm_buffers
from bloomberg_style.training.metrics import read_jsonl
from bloomberg_style.training.watchdog import HANG_EXIT_CODE, drills_for_this_process
from tests.conftest import COMMON, REPO, launch_env, losses, tiny_run_config, torchrun


def test_drills_scoped_to_one_rank_and_the_first_attempt():
    spec = "kill@5:1,nan@3,hang@7:0"
    assert drills_for_this_process(spec, 0, {}) == "nan@3,hang@7"
    assert drills_for_this_process(spec, 1, {}) == "kill@5,nan@3"
    assert drills_for_this_process(spec, 1, {"TORCHELASTIC_RESTART_COUNT": "0"}) == "kill@5,nan@3"
    assert drills_for_this_process(spec, 1, {"TORCHELASTIC_RESTART_COUNT": "1"}) == ""
    with pytest.raises(ValueError, match="KIND@STEP"):
        drills_for_this_process("kill@5:x", 0, {})


def test_stale_shm_buffers_removed_live_ones_kept(tmp_path):
    """Only this user's buffers that no process maps (and that are over a minute old) go."""
    stale, live, young = (tmp_path / f"deepspeed_allreduce_buffer_0_127.0.0.1_29500_{r}" for r in (0, 1, 2))
    for path in (stale, live, young):
        path.write_bytes(b"\0" * 4096)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(live, (old, old))
    maps = tmp_path / "proc" / "1" / "maps"
    maps.parent.mkdir(parents=True)
    with open(live, "r+b") as f, mmap.mmap(f.fileno(), 4096):
        # What /proc/PID/maps shows for a process that maps the buffer.
        maps.write_text(f"7f00-7f01 rw-s 00000000 00:1a 123    {live}\n")
        removed = remove_stale_shm_buffers(str(tmp_path / "deepspeed_allreduce_buffer_*"), str(maps))
    assert removed == [str(stale)]
    assert live.exists() and young.exists() and not stale.exists()


@pytest.fixture(scope="module")
def expected(tmp_path_factory, small_data) -> dict[int, float]:
    """The uninterrupted run's losses, under the deepspeed launcher: it sets LOCAL_SIZE, which used
    to make every rank leave a 69 MB /dev/shm/deepspeed_allreduce_buffer_<uid>_<addr>_<port>_<rank>."""
    tmp = tmp_path_factory.mktemp("straight")
    straight = tiny_run_config(tmp, small_data, name="straight", train=COMMON)
    port = str(free_port())
    subprocess.run([sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", "2", "--master_port", port,
                    str(REPO / "launch" / "pretrain.py"), "--config", str(straight)],
                   check=True, capture_output=True, timeout=400, cwd=str(REPO), env=launch_env())  # fmt: skip
    assert not glob.glob(f"/dev/shm/deepspeed_allreduce_buffer_*_{port}_*")
    got = losses(tmp / "runs" / "straight")
    assert sorted(got) == list(range(1, 11))
    return got


@pytest.mark.slow
def test_torchrun_restarts_after_one_rank_is_killed_every_time(tmp_path, small_data, expected):
    """Two kills of one rank (rank 1, then rank 0), each recovered by torchrun; exact losses."""
    for repetition, drill in enumerate(("kill@5:1", "kill@8:0")):
        name = f"killed{repetition}"
        cfg = tiny_run_config(tmp_path, small_data, name=name, train=COMMON)
        proc = torchrun(cfg, {"BLOOMBERG_STYLE_INJECT": drill})
        log = proc.stdout + proc.stderr
        assert "exitcode: -9" in log, log[-3000:]  # the rank really died by SIGKILL ...
        assert "resumed from" in log  # ... and the restarted workers resumed from a checkpoint
        got = losses(tmp_path / "runs" / name)
        assert sorted(got) == list(range(1, 11))
        diff = max(abs(got[s] - expected[s]) for s in expected)
        print(f"repetition {repetition} ({drill}): max |loss difference| = {diff}")
        assert diff == 0.0


@pytest.mark.slow
def test_hang_drill_writes_stacks_restarts_and_matches_a_straight_run(tmp_path, small_data, expected):
    """hang@5:1: rank 1 stops inside step 5, rank 0 waits in the step's collective; both dump
    their stacks, exit 124, torchrun restarts them, the run resumes and every loss is equal."""
    hung = tiny_run_config(tmp_path, small_data, name="hung", train=COMMON,
                           faults={"hang_floor_s": 3.0, "hang_warmup_steps": 2, "hang_startup_s": 60.0})  # fmt: skip
    proc = torchrun(hung, {"BLOOMBERG_STYLE_INJECT": "hang@5:1"})
    log = proc.stdout + proc.stderr
    assert f"exitcode: {HANG_EXIT_CODE}" in log and "resumed from" in log, log[-3000:]
    hangs = tmp_path / "runs" / "hung" / "hangs"
    dumps = {p.name: p.read_text() for p in hangs.glob("attempt0-step5-rank*.txt")}
    assert sorted(dumps) == ["attempt0-step5-rank0.txt", "attempt0-step5-rank1.txt"], log[-3000:]
    assert "in step" in dumps["attempt0-step5-rank1.txt"]  # rank 1: inside the drill's wait
    assert "train_step" in dumps["attempt0-step5-rank0.txt"]  # rank 0: inside the step's collective
    got = losses(tmp_path / "runs" / "hung")
    assert sorted(got) == list(range(1, 11))
    diff = max(abs(got[s] - expected[s]) for s in expected)
    print(f"hang drill: max |loss difference| = {diff}")
    assert diff == 0.0


@pytest.mark.slow
def test_preempted_run_under_torchrun_ends_instead_of_restarting(tmp_path, small_data):
    """A STOP under torchrun --max-restarts: checkpoint, REQUEUE, exit 0, and no restart in the job
    (an exit of 75 made the agent start the run again inside the job that was ending)."""
    cfg = tiny_run_config(tmp_path, small_data, name="stopped", train=COMMON)
    run = tmp_path / "runs" / "stopped"
    run.mkdir(parents=True)
    (run / "STOP").touch()  # what the job script leaves when SLURM signals the time limit
    log = (lambda p: p.stdout + p.stderr)(torchrun(cfg))
    assert "exiting for requeue" in log and "resumed from" not in log, log[-3000:]
    assert (run / "REQUEUE").read_text().startswith("STOP file at step ")
    assert not (run / "STOP").exists()
    assert len(losses(run)) < COMMON["steps"]  # it stopped early and stayed stopped
    kinds = [e["event"] for e in read_jsonl(run / "events.jsonl")]
    assert kinds.count("preempted") == 1 and "resume" not in kinds
