"""BLOOM decoder with ALiBi, as BloombergGPT trained it.

Exports load on first use, so `from bloomberg_style.model.config import ModelConfig`
(sizing, config checks) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "IGNORE_INDEX": "model",
    "PRESETS": "config",
    "ModelConfig": "config",
    "alibi_bias": "alibi",
    "alibi_slopes": "alibi",
    "init_weights": "init",
    "BloomForCausalLM": "model",
    "param_groups": "model",
}

__all__ = [
    "IGNORE_INDEX",
    "PRESETS",
    "BloomForCausalLM",
    "ModelConfig",
    "alibi_bias",
    "alibi_slopes",
    "init_weights",
    "param_groups",
]

if TYPE_CHECKING:
    from .alibi import alibi_bias, alibi_slopes
    from .config import PRESETS, ModelConfig
    from .init import init_weights
    from .model import IGNORE_INDEX, BloomForCausalLM, param_groups


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
