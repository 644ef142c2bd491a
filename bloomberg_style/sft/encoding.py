"""Token ids with a parallel "trained" flag per token: what every template encoding produces.

Kept apart from collate.py (rows, padding) so that both collate and chat_masks (a HF
tokenizer's own chat template) build on it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from .templates import Segment


@dataclass
class Encoded:
    ids: list[int]
    targets: list[bool]  # targets[i]: token i is trained (predicted from ids[:i])


def encode_segments(segments: list[Segment], tok) -> Encoded:
    """Encode each text segment on its own (prompt text in one piece, each reply alone)."""
    ids: list[int] = []
    targets: list[bool] = []
    for seg in segments:
        piece = [tok.eod_id] if seg.eod else tok.encode(seg.text)
        ids.extend(piece)
        targets.extend([seg.train] * len(piece))
    return Encoded(ids, targets)
