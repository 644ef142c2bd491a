"""Everything on disk: run folders, checkpoints, Hugging Face and adapter folders, tokenizer copies.

`resolve(path)` says what a path holds (a `ModelRef`); `load_model(ref, dtype, device)` and
`load_tokenizer(ref)` load it. layout.py names every file and folder; nothing else does.
Exports load on first use, so the layout constants do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ModelRef": "refs",
    "resolve": "refs",
    "model_kind": "refs",
    "tokenizer_dir": "refs",
    "load_model": "load",
    "load_pretrained": "load",
    "load_tokenizer": "load",
    "save_model": "load",
    "load_checkpoint_model": "checkpoint",
    "load_checkpoint_state_dict": "checkpoint",
    "resolve_checkpoint": "layout",
    "run_folder_of": "layout",
    "adapter_base": "layout",
    "copy_tokenizer": "layout",
}

__all__ = [
    "ModelRef",
    "adapter_base",
    "copy_tokenizer",
    "load_checkpoint_model",
    "load_checkpoint_state_dict",
    "load_model",
    "load_pretrained",
    "load_tokenizer",
    "model_kind",
    "resolve",
    "resolve_checkpoint",
    "run_folder_of",
    "save_model",
    "tokenizer_dir",
]

if TYPE_CHECKING:
    from .checkpoint import load_checkpoint_model, load_checkpoint_state_dict
    from .layout import adapter_base, copy_tokenizer, resolve_checkpoint, run_folder_of
    from .load import load_model, load_pretrained, load_tokenizer, save_model
    from .refs import ModelRef, model_kind, resolve, tokenizer_dir


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
