"""Stop requests from outside: SIGTERM / SIGUSR1 (SLURM pre-emption or time limit) or a
STOP file in the run folder (for launchers that do not forward signals).

The trainer polls `requested()` once per step, agrees across ranks, writes a checkpoint,
leaves a REQUEUE file and exits with `requeue_exit_code()` so the job script can requeue itself.
A run that gives up (too many rollbacks) leaves a GAVE_UP file instead: restarts and requeues
then refuse at once rather than replaying the same failure on every node.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

from bloomberg_style.config import ConfigError

REQUEUE_EXIT_CODE = 75  # EX_TEMPFAIL: "try again later"
STOP_FILE = "STOP"
# Written when the run exits for requeue; launchers such as torchrun do not pass exit codes on.
REQUEUE_FILE = "REQUEUE"
GAVE_UP_FILE = "GAVE_UP"  # why the run stopped itself; a person deletes it to train on


def requeue_exit_code(env: Mapping[str, str] = os.environ) -> int:
    """REQUEUE_EXIT_CODE for a plain launch; 0 under torchrun's elastic agent.

    The agent restarts the workers after any non-zero exit while `--max-restarts` lasts, so a
    pre-empted run exiting 75 would start again inside the job that is about to be killed. Under
    the agent the REQUEUE file alone tells the job script what happened.
    """
    return 0 if env.get("TORCHELASTIC_RUN_ID") else REQUEUE_EXIT_CODE


class RunStopped(Exception):
    """Raised to end the training loop early; `code` is the process exit code, `gave_up` says
    the run must not start again by itself (the trainer leaves GAVE_UP_FILE)."""

    def __init__(self, code: int, reason: str, gave_up: bool = False):
        super().__init__(reason)
        self.code = code
        self.gave_up = gave_up


def refuse_if_gave_up(run_dir: Path) -> None:
    """ConfigError (exit 2, before any compute) when the run folder holds a GAVE_UP file."""
    marker = run_dir / GAVE_UP_FILE
    if marker.exists():
        raise ConfigError(
            f"{marker}: this run gave up ({marker.read_text(encoding='utf-8').strip()}). Look at "
            f"{run_dir / 'events.jsonl'}, change what caused it (e.g. train.lr, the data, "
            "faults.max_rollbacks), then delete that file to resume from the latest checkpoint"
        )


class StopRequest:
    def __init__(self, run_dir: Path):
        self.stop_file = run_dir / STOP_FILE
        self.signal_name: str | None = None
        self._previous = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        self.signal_name = signal.Signals(signum).name

    def requested(self) -> str | None:
        if self.signal_name:
            return self.signal_name
        if self.stop_file.exists():
            return "STOP file"
        return None

    def clear(self) -> None:
        self.stop_file.unlink(missing_ok=True)
