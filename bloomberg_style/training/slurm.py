"""The launch command a SLURM job runs on each node, built from SLURM's variables.

One task per node under `srun`; on each node `torchrun` starts one rank per GPU and the
nodes meet at a c10d rendezvous on the job's first host: no SSH between nodes, no
hostfile (gpt-neox #891, #1203). torchrun restarts the workers itself (`--max-restarts`,
MAX_RESTARTS) after a dead rank or a hang (training/watchdog.py), and gives them
STOP_GRACE_S seconds between SIGTERM and SIGKILL (`--shutdown-timeout`) so the pre-emption
checkpoint can be written. The job script turns a time-limit signal into a STOP file (the
trainer checkpoints, leaves a REQUEUE file and exits 0, so torchrun does not restart it) and
requeues itself, after a failure
too, until MAX_FAILED_REQUEUES jobs in a row made no progress (`requeue_decision`).

    python -m bloomberg_style.training.slurm --config C.yaml [--set k=v ...] [--exec]
    python -m bloomberg_style.training.slurm --config C.yaml --latest-step
    python -m bloomberg_style.training.slurm --config C.yaml --after-exit CODE --start-step N
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from bloomberg_style.config import ConfigError, RunConfig
from bloomberg_style.configlib import add_set_flag
from bloomberg_style.training.preemption import GAVE_UP_FILE, REQUEUE_FILE

FAILURES_FILE = "slurm_failed_requeues"  # consecutive failed jobs that made no progress


def launch_target() -> list[str]:
    """What torchrun starts: the checkout's launch/pretrain.py (job scripts cd to the submit folder),
    else the installed module."""
    script = Path.cwd() / "launch" / "pretrain.py"
    return [str(script)] if script.is_file() else ["-m", "bloomberg_style.cli.pretrain"]


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list (via scontrol when present, else parsed)."""
    try:
        out = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True
        )
        return out.stdout.split()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return expand_first(nodelist)


def expand_first(nodelist: str) -> str:
    """'gpu[003-010,12],cpu1' -> 'gpu003' (enough of SLURM's syntax for the first host)."""
    head = (
        nodelist.split(",")[0] if "[" not in nodelist.split(",")[0] else nodelist[: nodelist.index("]") + 1]
    )
    if "[" not in head:
        return head
    prefix, ranges = head.split("[", 1)
    first = ranges.rstrip("]").split(",")[0].split("-")[0]
    return prefix + first


def launch_command(env: Mapping[str, str], config: str, overrides: list[str]) -> list[str]:
    """torchrun for this node, from SLURM_* variables (GPUS_PER_NODE / MASTER_PORT may override)."""
    try:
        nnodes = int(env["SLURM_NNODES"])
        node_rank = int(env["SLURM_NODEID"])
        job_id = env["SLURM_JOB_ID"]
        nodelist = env["SLURM_JOB_NODELIST"]
    except KeyError as exc:
        raise ConfigError(f"not inside a SLURM job: {exc.args[0]} is not set") from None
    gpus = env.get("GPUS_PER_NODE") or env.get("SLURM_GPUS_ON_NODE") or "1"
    port = env.get("MASTER_PORT") or str(20000 + int(job_id) % 20000)
    master = env.get("MASTER_ADDR") or first_host(nodelist)
    restarts = _non_negative_int(env, "MAX_RESTARTS", "3")
    grace = _non_negative_int(env, "STOP_GRACE_S", "600")
    cmd = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", str(nnodes), "--node-rank", str(node_rank), "--nproc-per-node", str(int(gpus)),
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{master}:{port}", "--rdzv-id", job_id,
        "--max-restarts", str(restarts), "--shutdown-timeout", str(grace),
        *launch_target(), "--config", config,
    ]  # fmt: skip
    for item in overrides:
        cmd += ["--set", item]
    return cmd


def _non_negative_int(env: Mapping[str, str], name: str, default: str) -> int:
    value = env.get(name) or default
    if not value.isdigit():
        raise ConfigError(
            f"{name} must be a whole number of {'seconds' if name.endswith('_S') else 'restarts'}, got {value!r}"
        )
    return int(value)


def latest_step(run_dir: Path) -> int:
    """The step of the run's newest complete checkpoint (0 without one)."""
    try:
        tag = (run_dir / "checkpoints" / "latest").read_text().strip()
    except OSError:
        return 0
    digits = tag.removeprefix("step_")
    return int(digits) if digits.isdigit() else 0


def requeue_decision(run_dir: Path, exit_code: int, start_step: int, max_failures: int) -> tuple[bool, str]:
    """After the job's srun ended: requeue or not, and why. Updates RUN/FAILURES_FILE.

    A clean pre-emption stop (REQUEUE file) requeues; a finished run (exit 0) or one that gave
    up (GAVE_UP file) does not; a
    failure requeues unless this is the `max_failures`-th job in a row whose latest checkpoint
    did not move (a failure that repeats before the next checkpoint would requeue forever).
    """
    counter = run_dir / FAILURES_FILE
    now = latest_step(run_dir)
    gave_up = run_dir / GAVE_UP_FILE
    if gave_up.exists():
        counter.unlink(missing_ok=True)
        return False, f"the run gave up ({gave_up.read_text().strip()}): not requeueing; see {gave_up}"
    requeue_file = run_dir / REQUEUE_FILE
    if requeue_file.exists():
        reason = requeue_file.read_text().strip()
        requeue_file.unlink()
        counter.unlink(missing_ok=True)
        return True, f"checkpoint written ({reason}); requeueing"
    if exit_code == 0:
        counter.unlink(missing_ok=True)
        return False, f"the run ended normally at checkpoint step {now}"
    failures = 0 if now > start_step else _read_int(counter) + 1
    counter.write_text(f"{failures}\n", encoding="utf-8")
    progress = f"checkpoint step {start_step} -> {now}"
    if failures >= max_failures:
        return False, (f"failed with exit code {exit_code} ({progress}); {failures} jobs in a row made no "
                       f"progress (MAX_FAILED_REQUEUES={max_failures}): not requeueing; see the job log")  # fmt: skip
    return True, f"failed with exit code {exit_code} ({progress}, {failures} without progress); requeueing"


def _read_int(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print the per-node launch command of a SLURM job")
    parser.add_argument("--config", required=True)
    add_set_flag(parser)
    parser.add_argument("--run-dir", action="store_true", help="print the run folder instead")
    parser.add_argument("--latest-step", action="store_true", help="print the newest checkpoint's step")
    parser.add_argument("--after-exit", type=int, metavar="CODE", help="decide on a requeue (prints "
                        "requeue/stop, then the reason) after srun exited with CODE")  # fmt: skip
    parser.add_argument(
        "--start-step", type=int, default=0, help="with --after-exit: --latest-step at job start"
    )
    parser.add_argument("--max-failures", type=int, default=3, help="with --after-exit: MAX_FAILED_REQUEUES")
    parser.add_argument(
        "--exec", action="store_true", help="replace this process with the command (per node)"
    )
    args = parser.parse_args(argv)
    try:
        cfg = RunConfig.load(args.config, args.set)  # fail in the job script, before srun
        if args.run_dir:
            print(cfg.run_dir.resolve())
            return 0
        if args.latest_step:
            print(latest_step(cfg.run_dir))
            return 0
        if args.after_exit is not None:
            requeue, reason = requeue_decision(
                cfg.run_dir, args.after_exit, args.start_step, args.max_failures
            )
            print("requeue" if requeue else "stop", reason)
            return 0
        cmd = launch_command(os.environ, args.config, args.set)
        if args.exec:
            sys.stdout.flush()
            os.execv(cmd[0], cmd)
        print(shlex.join(cmd))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
