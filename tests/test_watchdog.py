"""Hang watchdog: the limit, a real stuck process dumping its stacks and exiting 124, a stuck save
(the fire drill under torchrun, both ranks' stacks and a restart, is in tests/test_restart.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from bloomberg_style.config import ConfigError, FaultsSection
from bloomberg_style.training.watchdog import HANG_EXIT_CODE, step_limit
from tests.conftest import REPO


def test_limit_derived_from_the_median_step_time():
    kw = dict(timeout_s=0.0, floor_s=300.0, factor=10.0, warmup=5, startup_s=1800.0)
    assert step_limit([], **kw) == 1800.0  # no median yet: the start-up allowance
    assert step_limit([33.0] * 4, **kw) == 1800.0
    assert step_limit([33.0, 34.0, 32.0, 90.0, 33.0], **kw) == 330.0  # 10 x median, not x mean
    assert step_limit([2.0] * 10, **kw) == 300.0  # the floor
    assert step_limit([2.0] * 10, **{**kw, "timeout_s": 42.0}) == 42.0  # set by hand
    with pytest.raises(ConfigError, match="faults.hang_factor"):
        FaultsSection(hang_factor=float("nan")).validate()


def test_stuck_step_dumps_all_threads_and_exits_for_a_restart(tmp_path):
    """A real process stuck inside a step (a lock that is never released, on another thread's
    behalf): the stacks of every thread land in RUN/hangs/ and the exit code is 124."""
    script = textwrap.dedent(f"""
        import threading, time
        from pathlib import Path
        from bloomberg_style.training.watchdog import HangWatchdog
        dog = HangWatchdog(Path({str(tmp_path)!r}), rank=3, timeout_s=1.0).start()
        with dog.step(1):
            time.sleep(0.1)
        lock = threading.Lock(); lock.acquire()
        def stuck_in_collective():
            lock.acquire()
        with dog.step(2):
            stuck_in_collective()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=str(REPO), env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode == HANG_EXIT_CODE, proc.stderr
    (dump,) = (tmp_path / "hangs").glob("attempt0-step2-rank3.txt")
    text = dump.read_text()
    assert "over the limit of 1.0 s" in text
    assert "stuck_in_collective" in text
    assert text.count("Thread 0x") + text.count("Current thread 0x") >= 2  # all threads, not just one


def test_a_stuck_save_fires_with_the_longer_phase_limit(tmp_path):
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from bloomberg_style.training.watchdog import HangWatchdog
        dog = HangWatchdog(Path({str(tmp_path)!r}), rank=0, timeout_s=0.3, startup_s=1.5).start()
        with dog.step(1):
            time.sleep(0.1)
        with dog.phase("save", 1):  # longer than a step may take, shorter than a save may
            time.sleep(0.8)
        with dog.phase("save", 2):
            time.sleep(30)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=str(REPO), env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode == HANG_EXIT_CODE, proc.stderr
    assert [p.name for p in (tmp_path / "hangs").glob("*.txt")] == ["attempt0-save-step2-rank0.txt"]
    assert "over the limit of 1.5 s" in (tmp_path / "hangs" / "attempt0-save-step2-rank0.txt").read_text()
