"""The launch command a SLURM job runs on each node, built from SLURM's variables.

One task per node under `srun`; on each node `torchrun` starts one rank per GPU and the
nodes meet at a c10d rendezvous on the job's first host: no SSH between nodes, no
hostfile (gpt-neox #891, #1203). The job script turns a time-limit signal into a STOP file
(the trainer checkpoints and exits with REQUEUE_EXIT_CODE) and requeues itself.

    python -m bloomberg_style.training.slurm --config C.yaml [--set k=v ...] [--exec]
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
    cmd = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", str(nnodes), "--node-rank", str(node_rank), "--nproc-per-node", str(int(gpus)),
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{master}:{port}", "--rdzv-id", job_id,
        *launch_target(), "--config", config,
    ]  # fmt: skip
    for item in overrides:
        cmd += ["--set", item]
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print the per-node launch command of a SLURM job")
    parser.add_argument("--config", required=True)
    add_set_flag(parser)
    parser.add_argument("--run-dir", action="store_true", help="print the run folder instead")
    parser.add_argument(
        "--exec", action="store_true", help="replace this process with the command (per node)"
    )
    args = parser.parse_args(argv)
    try:
        cfg = RunConfig.load(args.config, args.set)  # fail in the job script, before srun
        if args.run_dir:
            print(cfg.run_dir.resolve())
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
