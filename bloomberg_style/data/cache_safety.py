"""megatron-core's index cache must not run code.

megatron-core reads its cached document/sample/shuffle indices with
`numpy.load(allow_pickle=True)`: an `.npy` whose dtype is `object` is a pickle, and
loading it runs whatever it names. megatron itself only writes integer arrays, so a
cache file with an object dtype was planted (or is not megatron's). Before megatron
touches a cache folder, every `.npy` header in it is read (the header is plain text;
nothing is unpickled) and a file that would unpickle stops the run unless the user
trusts that folder (`data.trust_index_cache: true`). The cache lives in the run folder
by default, not next to the shards where other people's files collect.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bloomberg_style.config import ConfigError


class UnsafeIndexCache(ConfigError):
    """An index cache file that numpy would unpickle; the message names it."""


def npy_needs_pickle(path: Path) -> bool:
    """True if numpy would unpickle this .npy (object dtype, or a header it cannot read)."""
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                _, _, dtype = np.lib.format.read_array_header_2_0(f)
    except (ValueError, OSError):
        return True  # not a plain .npy: megatron's allow_pickle load could unpickle it
    return bool(dtype.hasobject)


def check_index_cache(cache: str | Path, trust: bool = False) -> None:
    """Refuse a cache folder holding an .npy that would be unpickled, unless trusted."""
    if trust:
        return
    bad = sorted(str(p) for p in Path(cache).glob("**/*.npy") if npy_needs_pickle(p))
    if bad:
        raise UnsafeIndexCache(
            f"index cache {cache}: {len(bad)} file(s) would be unpickled by megatron-core "
            f"(allow_pickle=True), which can run code: {bad[:3]}. megatron writes integer arrays "
            "only: delete the files, use another data.cache_dir, or set data.trust_index_cache: true "
            "if you wrote them"
        )
