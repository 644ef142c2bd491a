"""Stop requests from outside: SIGTERM / SIGUSR1 (SLURM pre-emption or time limit) or a
STOP file in the run folder (for launchers that do not forward signals).

The trainer polls `requested()` once per step, agrees across ranks, writes a checkpoint,
leaves a REQUEUE file and exits with `requeue_exit_code()` so the job script can requeue itself.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

REQUEUE_EXIT_CODE = 75  # EX_TEMPFAIL: "try again later"
STOP_FILE = "STOP"
# Written when the run exits for requeue; launchers such as torchrun do not pass exit codes on.
REQUEUE_FILE = "REQUEUE"


def requeue_exit_code(env: Mapping[str, str] = os.environ) -> int:
    """REQUEUE_EXIT_CODE for a plain launch; 0 under torchrun's elastic agent.

    The agent restarts the workers after any non-zero exit while `--max-restarts` lasts, so a
    pre-empted run exiting 75 would start again inside the job that is about to be killed. Under
    the agent the REQUEUE file alone tells the job script what happened.
    """
    return 0 if env.get("TORCHELASTIC_RUN_ID") else REQUEUE_EXIT_CODE


class RunStopped(Exception):
    """Raised to end the training loop early; `code` is the process exit code."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code


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
