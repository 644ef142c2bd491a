"""Which attention path a run really uses, and why when `auto` (or `flash`) fell back.

`attention_impl: auto` picks flash-attention where it can run and sdpa otherwise, per
forward pass, without a word. A run that meant to use flash and silently did not is
~2x slower; the start of every run says which path runs and why (log line and an
`attention` event in events.jsonl / wandb).
"""

from __future__ import annotations

import warnings

import torch

from bloomberg_style.model.attention import flash_unavailable_reason, resolve_impl


def attention_path(requested: str, device: torch.device, dtype: torch.dtype) -> dict[str, str | None]:
    """{"requested", "path" (what runs), "fallback_reason" (None unless it fell back)}."""
    with warnings.catch_warnings():  # the fallback is reported here, once, with its reason
        warnings.simplefilter("ignore", RuntimeWarning)
        path = resolve_impl(requested, device, dtype)
    reason = None
    if requested in ("auto", "flash") and path != "flash":
        reason = flash_unavailable_reason(device, dtype)
    return {"requested": requested, "path": path, "fallback_reason": reason}


def describe(report: dict[str, str | None]) -> str:
    line = f"attention: {report['path']} (attention_impl={report['requested']})"
    if report["fallback_reason"]:
        line += f"; not flash because {report['fallback_reason']}"
    return line
