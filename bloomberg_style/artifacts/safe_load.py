"""Reading DeepSpeed checkpoint files without running code from them.

`torch.load(weights_only=False)` unpickles: a planted `*_model_states.pt` or
`*_optim_states.pt` can run anything on the machine that opens it. `weights_only=True`
rebuilds only tensors, containers and plain values, plus the classes allowlisted here:
the three small DeepSpeed objects its checkpoints hold (the loss scaler, the ZeRO stage
enum and the fragment address of a partitioned parameter), all rebuilt as data, never
called. That is enough to gather a checkpoint's FP32 weights (export, evaluation, chat,
SFT from our checkpoints). Resuming training still goes through DeepSpeed's own loader,
which unpickles its optimizer states: resume only runs you (or someone you trust) wrote.
"""

from __future__ import annotations

import contextlib
import functools
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch


def deepspeed_safe_globals() -> list[Any]:
    """The classes DeepSpeed's checkpoints hold besides tensors and plain values."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


def load_weights_only(path: str | Path, **kwargs: Any) -> Any:
    """torch.load with weights_only=True and the DeepSpeed allowlist; a clear error otherwise."""
    kwargs.setdefault("map_location", "cpu")
    kwargs["weights_only"] = True
    try:
        with torch.serialization.safe_globals(deepspeed_safe_globals()):
            return _ORIGINAL_LOAD(path, **kwargs)
    except pickle.UnpicklingError as exc:
        raise pickle.UnpicklingError(
            f"{path}: refused to unpickle it: it holds objects other than tensors, plain values and "
            f"DeepSpeed's checkpoint classes, and loading them could run code ({str(exc).splitlines()[0]})"
        ) from None


_ORIGINAL_LOAD = torch.load


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """Inside this block every torch.load (DeepSpeed's zero_to_fp32 included, which asks
    for weights_only=False) reads with weights_only=True and the allowlist."""

    @functools.wraps(_ORIGINAL_LOAD)
    def load(f, *args, **kwargs):
        kwargs.pop("weights_only", None)
        if args:  # map_location given positionally
            kwargs.setdefault("map_location", args[0])
        return load_weights_only(f, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = _ORIGINAL_LOAD
