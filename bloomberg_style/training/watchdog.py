"""Hang watchdog: a step that takes far longer than usual dumps every rank's Python stacks and
exits with a code the launcher restarts on.

A rank stuck in a collective (a dead peer, a wedged NIC, a deadlock in data loading) otherwise
waits for the collective's timeout (NCCL: 10-30 minutes, gloo: the process-group timeout) or
for a person. Here a daemon thread watches the time since the current step began; past the
limit it writes `RUN/hangs/attempt<A>-step<N>-rank<R>.txt` (faulthandler, all threads), leaves
a marker so the other ranks dump theirs too, and ends the process with HANG_EXIT_CODE. torchrun
(`--max-restarts`) then restarts the workers, which resume from the latest checkpoint.

The limit is `faults.hang_timeout_s` when set, else max(hang_floor_s, hang_factor x median
step time) once hang_warmup_steps steps are timed (before that: hang_startup_s); evaluation
and checkpoint saves get the larger of that and hang_startup_s. A
faulthandler C-level timer (GIL-free) backs the Python thread up in case the main thread
holds the GIL in a native call.

Fire drills (BLOOMBERG_STYLE_INJECT) are scoped here: `kind@STEP:RANK` fires on one rank only,
and under torchelastic a drill fires in the first attempt only, so the restarted workers show
the recovery instead of dying again at the same step.
"""

from __future__ import annotations

import faulthandler
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

HANG_EXIT_CODE = 124  # as coreutils `timeout`: "it took too long"; torchrun restarts on any failure
HANGS_DIR = "hangs"
_MARKER = "FIRED-attempt{attempt}"
_MARKER_POLL_S = 1.0  # how often each rank looks for another rank's FIRED marker
_PEER_GRACE_S = 5.0  # time the firing rank leaves the others to write their stacks before exiting
_BACKSTOP_EXTRA_S = 60.0  # the GIL-free timer fires this much after the Python watchdog should have


def restart_attempt(env: Mapping[str, str] = os.environ) -> int:
    """Which try of the same run this process is (torchelastic's restart count; 0 outside it)."""
    value = env.get("TORCHELASTIC_RESTART_COUNT", "0")
    return int(value) if value.isdigit() else 0


def drills_for_this_process(spec: str, rank: int, env: Mapping[str, str] = os.environ) -> str:
    """The fire-drill spec as this process should see it: `kind@STEP` items only.

    `kind@STEP:RANK` keeps the drill on rank RANK only; every drill is dropped on a restarted
    attempt (TORCHELASTIC_RESTART_COUNT > 0), so a drill tests one failure and its recovery.
    """
    if restart_attempt(env) > 0:
        return ""
    kept = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        drill, sep, only_rank = item.partition(":")
        if sep and not only_rank.isdigit():
            raise ValueError(f"BLOOMBERG_STYLE_INJECT: cannot read {item!r}; expected KIND@STEP[:RANK]")
        if not sep or int(only_rank) == rank:
            kept.append(drill)
    return ",".join(kept)


def step_limit(
    durations: list[float], timeout_s: float, floor_s: float, factor: float, warmup: int, startup_s: float
) -> float:
    """Seconds a step may take before it counts as hung."""
    if timeout_s > 0:
        return timeout_s
    if len(durations) < warmup:
        return max(floor_s, startup_s)
    return max(floor_s, factor * statistics.median(durations))


class HangWatchdog:
    """Watches the steps of one rank; `with watchdog.step(n): ...` around each optimizer step."""

    def __init__(
        self,
        run_dir: Path,
        rank: int,
        timeout_s: float = 0.0,
        floor_s: float = 300.0,
        factor: float = 10.0,
        warmup_steps: int = 5,
        startup_s: float = 1800.0,
        hang_at: set[int] | None = None,
        poll_s: float = 0.2,
        enabled: bool = True,
    ):
        self.enabled = enabled
        self.dir = run_dir / HANGS_DIR
        self.rank = rank
        self.attempt = restart_attempt()
        self.limits = dict(timeout_s=timeout_s, floor_s=floor_s, factor=factor, warmup=warmup_steps,
                           startup_s=startup_s)  # fmt: skip
        self.durations: deque[float] = deque(maxlen=200)
        self.hang_at = set(hang_at or ())
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._current: tuple[str, float, float] | None = None  # (what, started, limit)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_wall = time.time()

    # ---- the hooks -----------------------------------------------------------------------
    @contextmanager
    def step(self, step: int) -> Iterator[None]:
        """Time one optimizer step (1-based number); past the limit the watchdog fires."""
        started = time.monotonic()
        with self._watch_over(f"step{step}", self.limit()):
            if step in self.hang_at:  # fire drill: this rank stops making progress mid-step
                self.hang_at.discard(step)
                threading.Event().wait()
            yield
        self.durations.append(time.monotonic() - started)

    @contextmanager
    def phase(self, name: str, step: int) -> Iterator[None]:
        """Evaluation or a checkpoint save: many collectives, longer than a step; their limit
        is the step limit or hang_startup_s, whichever is larger (not timed into the median)."""
        with self._watch_over(f"{name}-step{step}", max(self.limit(), self.limits["startup_s"])):
            yield

    @contextmanager
    def _watch_over(self, what: str, limit: float) -> Iterator[None]:
        with self._lock:
            outer, self._current = self._current, (what, time.monotonic(), limit)
        if self.enabled and outer is None:
            self._arm_backstop(limit)
        try:
            yield
        finally:
            with self._lock:
                self._current = outer
            if outer is None:
                faulthandler.cancel_dump_traceback_later()

    @classmethod
    def from_config(cls, faults, run_dir: Path, rank: int, hang_at: set[int]) -> HangWatchdog:
        """The watchdog `faults` (config.FaultsSection) asks for (call start() to run it)."""
        return cls(run_dir, rank, timeout_s=faults.hang_timeout_s, floor_s=faults.hang_floor_s,
                   factor=faults.hang_factor, warmup_steps=faults.hang_warmup_steps,
                   startup_s=faults.hang_startup_s, hang_at=hang_at, enabled=faults.hang_watchdog)  # fmt: skip

    def limit(self) -> float:
        return step_limit(list(self.durations), **self.limits)

    # ---- the thread ----------------------------------------------------------------------
    def start(self) -> HangWatchdog:
        if not self.enabled:
            return self
        self._thread = threading.Thread(target=self._watch, name="hang-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        faulthandler.cancel_dump_traceback_later()

    def _watch(self) -> None:
        marker = self.dir / _MARKER.format(attempt=self.attempt)
        next_look = 0.0  # the marker is on the shared run folder: a stat every few seconds per rank
        while not self._stop.wait(self.poll_s):
            with self._lock:
                current = self._current
            now = time.monotonic()
            if current is not None and now - current[1] > current[2]:
                self.fire(current[0], f"{current[0]} ran {now - current[1]:.1f} s, "
                                      f"over the limit of {current[2]:.1f} s")  # fmt: skip
            if now < next_look:
                continue
            next_look = now + _MARKER_POLL_S
            if _fresh(marker, self._started_wall):  # another rank fired: this one is stuck too
                self.fire(
                    current[0] if current else "between-steps",
                    f"another rank fired ({marker.read_text().strip()})",
                )

    def fire(self, what: str, reason: str) -> None:
        """Write this rank's stacks, tell the other ranks, and end the process."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"attempt{self.attempt}-{what}-rank{self.rank}.txt"
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"hang watchdog, rank {self.rank}, pid {os.getpid()}: {reason}\n\n")
            f.flush()
            faulthandler.dump_traceback(file=f, all_threads=True)
        marker = self.dir / _MARKER.format(attempt=self.attempt)
        if not marker.exists():
            marker.write_text(f"rank {self.rank}: {reason}\n", encoding="utf-8")
            time.sleep(_PEER_GRACE_S)  # let the others write theirs before the launcher kills them
        print(f"hang watchdog (rank {self.rank}): {reason}; stacks in {path}; exiting with "
              f"{HANG_EXIT_CODE} for a restart", flush=True)  # fmt: skip
        os._exit(HANG_EXIT_CODE)

    def _arm_backstop(self, limit: float) -> None:
        """GIL-free faulthandler timer to stderr: fires if the Python thread cannot (exit code 1)."""
        faulthandler.dump_traceback_later(limit + _BACKSTOP_EXTRA_S, exit=True)


def _fresh(marker: Path, since: float) -> bool:
    """A marker written by this launch (a requeued job starts its attempts at 0 again)."""
    try:
        return marker.stat().st_mtime >= since - 1.0
    except FileNotFoundError:
        return False
