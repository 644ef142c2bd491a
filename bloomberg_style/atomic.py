"""Writes that a crash cannot leave half done: readers see the old file or the new one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to a temporary sibling, fsync it, then rename it over `path`."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)

    atomic_write_file(path, write)


def atomic_write_file(path: str | Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` fills a temporary sibling (torch.save, a JSON dump ...); it is fsynced and
    renamed over `path`, and the rename made durable."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: str | Path) -> None:
    """Make a rename in `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
