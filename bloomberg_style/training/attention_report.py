"""Which attention path a run really uses, and why when `auto` (or `flash`, `flex`) fell back.

`attention_impl: auto` picks a path per forward pass without a word (on CUDA flash-attn 2,
else flex, else sdpa; on CPU the measured fastest). A run that meant to use flash and
silently did not is ~2x slower; the start of every run says which path runs and why (log
line, an `attention` event in events.jsonl, wandb's run config).

One source of truth: the path reported is model.attention.choose()'s, the function the model's
forward asks (with the run's compute dtype and attention dropout), so log and kernel agree.
"""

from __future__ import annotations

import warnings

import torch

from bloomberg_style.model.attention import choose, flash_unavailable_reason


def attention_path(
    requested: str, device: torch.device, dtype: torch.dtype, dropout_p: float = 0.0, head_dim: int = 0
) -> dict[str, str | None]:
    """{"requested", "path" (what runs), "fallback_reason" (None unless it fell back)}."""
    with warnings.catch_warnings():  # the fallback is reported here, once, with its reason
        warnings.simplefilter("ignore", RuntimeWarning)
        choice = choose(requested, device, dtype, dropout_p, head_dim)
    reason = None
    if requested in ("auto", "flash") and choice.impl != "flash":
        reason = flash_unavailable_reason(device, dtype)  # auto: it runs `path` rather than flash
    elif requested != choice.impl and requested != "auto":
        reason = choice.reason  # flex fell back
    return {"requested": requested, "path": choice.impl, "fallback_reason": reason}


def describe(report: dict[str, str | None]) -> str:
    line = f"attention: {report['path']} (attention_impl={report['requested']})"
    if report["fallback_reason"]:
        missed = "flash" if report["requested"] in ("auto", "flash") else report["requested"]
        line += f"; not {missed} because {report['fallback_reason']}"
    return line
