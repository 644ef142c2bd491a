"""Sharded safetensors written tensor by tensor: how a 50B checkpoint becomes a HF folder.

transformers' layout for big models: `model-00001-of-0000N.safetensors` files of at most
`max_shard_bytes` each, plus `model.safetensors.index.json` ({"metadata": {"total_size"},
"weight_map": {name: file}}); a model that fits in one shard is a single `model.safetensors`.

The weights come from `open_weights()`, a mapping of name -> tensor or lazy tensor whose
`.contiguous()` materialises it (DeepSpeed's ZeRO-3 reader assembles a parameter from every
rank's memory-mapped optimizer file only then). Pages of a memory-mapped file stay resident
while it is mapped, so with `reopen_bytes` the mapping is dropped whenever that many bytes
were read through it (and after every shard) and opened again: the peak is one shard's
output plus a few reopen windows of source and temporaries, whatever the model's size
(measured: growth ~5x the shard at small shards, where window = shard). Each file appears
by an atomic rename (fsynced, as every checkpoint write: bloomberg_style.atomic).
"""

from __future__ import annotations

import gc
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..atomic import atomic_write_file, atomic_write_text

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
DEFAULT_MAX_SHARD_BYTES = 5 * 10**9  # transformers' default max_shard_size, "5GB"


UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
         "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip


def parse_size(text: str | int) -> int:
    """Bytes from "5GB" / "500MB" / "2GiB" / 123456 (transformers' max_shard_size spelling)."""
    if isinstance(text, int):
        value, unit = text, ""
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
        if not match or match.group(2).upper() not in UNITS:
            raise ValueError(f"max shard size {text!r}: expected a number of bytes or e.g. 5GB, 500MB, 2GiB")
        value, unit = float(match.group(1)), match.group(2).upper()
    size = int(value * UNITS[unit])
    if size <= 0:
        raise ValueError(f"max shard size {text!r} must be positive")
    return size


def plan_shards(
    shapes: Mapping[str, tuple[int, ...]], itemsize: int, max_shard_bytes: int
) -> list[list[str]]:
    """Names in order, cut into runs of at most max_shard_bytes (a bigger tensor gets its own)."""
    if max_shard_bytes <= 0:
        raise ValueError(f"max_shard_bytes must be positive, got {max_shard_bytes}")
    shards: list[list[str]] = []
    current: list[str] = []
    size = 0
    for name, shape in shapes.items():
        nbytes = math.prod(shape) * itemsize
        if current and size + nbytes > max_shard_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(name)
        size += nbytes
    if current:
        shards.append(current)
    return shards


def shard_file_names(count: int) -> list[str]:
    if count == 1:
        return [SINGLE_FILE]
    return [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]


def write_safetensors_shards(
    out: Path,
    shapes: Mapping[str, tuple[int, ...]],
    open_weights: Callable[[], Mapping[str, Any]],
    dtype: torch.dtype,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    metadata: dict[str, str] | None = None,
    reopen_bytes: int = 0,
    progress: bool = True,
) -> list[str]:
    """Write `shapes`' tensors (in that order, cast to dtype) as HF safetensors shards; returns the files.

    reopen_bytes > 0: drop and reopen `open_weights()` after that many source bytes and after
    each shard (memory-mapped sources); 0: open once."""
    shards = plan_shards(shapes, dtype.itemsize, max_shard_bytes)
    files = shard_file_names(len(shards))
    weight_map: dict[str, str] = {}
    total = 0
    weights: Mapping[str, Any] | None = None
    read = 0  # source bytes read through the current opening
    bar = tqdm(total=sum(len(s) for s in shards), desc="writing safetensors", unit="tensor",
               disable=not progress)  # fmt: skip
    for file, names in zip(files, shards):
        tensors: dict[str, torch.Tensor] = {}
        for name in names:
            if weights is None:
                weights = open_weights()
            if name not in weights:
                raise KeyError(f"{name} is not in the weights being exported")
            tensor = weights[name].contiguous().to(dtype).contiguous()
            if tuple(tensor.shape) != tuple(shapes[name]):
                raise ValueError(f"{name} has shape {tuple(tensor.shape)}, the config expects {shapes[name]}")
            tensors[name] = tensor
            total += tensor.numel() * tensor.element_size()
            read += tensor.numel() * 4
            if reopen_bytes and read >= reopen_bytes:
                weights, read = None, 0
                gc.collect()
            bar.update()
        _save_shard(out / file, tensors, {"format": "pt", **(metadata or {})})
        weight_map.update(dict.fromkeys(names, file))
        del tensors
        if reopen_bytes:
            weights, read = None, 0
            gc.collect()
    bar.close()
    if len(files) > 1:
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        atomic_write_text(out / INDEX_FILE, json.dumps(index, indent=2, sort_keys=True) + "\n")
    return files


def _save_shard(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    atomic_write_file(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def remove_stale_weights(out: Path) -> None:
    """Drop weight files of an earlier export into `out` (asked for with --overwrite): a
    leftover index or shard would be read together with the new files."""
    for pattern in (SINGLE_FILE, INDEX_FILE, "model-*-of-*.safetensors", "pytorch_model*.bin*"):
        for path in out.glob(pattern):
            path.unlink()
