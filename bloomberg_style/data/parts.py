"""A domain's shards: one prefix, a prepare_data manifest, a glob, or a list of these.

A corpus of hundreds of billions of tokens is prepared as hundreds of part
shards (bloomberg_style.data.prepare); a run config keeps one line per domain
by naming them together:

    prefix: shards/web              PREFIX.bin/.idx if present, else PREFIX.manifest.json's parts
    prefix: "shards/web-*"          every PREFIX.bin/.idx pair the glob matches, sorted
    prefixes: [shards/a, shards/b]  several of the above under one weight

`expand_prefixes` turns these into the list of shard prefixes megatron-core's
blended builder gets, in a deterministic order.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable
from pathlib import Path

from bloomberg_style.data.shards import idx_path, shard_exists

_GLOB_CHARS = set("*?[")


def expand_prefix(entry: str | Path) -> list[str]:
    """The shard prefixes one entry stands for ([] if nothing is there)."""
    text = str(entry)
    if shard_exists(text):
        return [text]
    manifest = Path(f"{text}.manifest.json")
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return [str(Path(f"{text}.parts") / p["name"]) for p in data.get("parts", [])]
    if _GLOB_CHARS & set(text):
        found = sorted(m[: -len(".idx")] for m in glob.glob(str(idx_path(text)), recursive=True))
        return [p for p in found if shard_exists(p)]
    return []


def expand_prefixes(entries: Iterable[str | Path]) -> list[str]:
    """All shard prefixes of a domain's entries, duplicates removed, first occurrence kept."""
    out: dict[str, None] = {}
    for entry in entries:
        for prefix in expand_prefix(entry):
            out.setdefault(prefix, None)
    return list(out)


def parts_ready(entries: Iterable[str | Path]) -> bool:
    """Whether every entry names at least one existing shard, each of them complete."""
    entries = [e for e in entries if str(e)]
    if not entries:
        return False
    for entry in entries:
        prefixes = expand_prefix(entry)
        if not prefixes or not all(shard_exists(p) for p in prefixes):
            return False
    return True
