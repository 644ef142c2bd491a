"""Examples -> token rows with exact loss masks; rows -> padded micro-batches.

A rendered example is a list of token ids and a parallel list saying which tokens are
trained (assistant replies and the end token after each). The model takes labels that
are already shifted, so for a row of ids x[0..n-1]:

    labels[t] = x[t+1]  if token t+1 is trained  else -100,      labels[n-1] = -100

i.e. the loss at position t is on predicting a reply token from everything before it.
Rows are either one example each (padding) or several whole examples packed greedily
into max_length tokens (packing; like pretraining, attention is causal over the row and
each example ends with the end-of-document token).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from bloomberg_style.model.model import IGNORE_INDEX  # the model's: labels it does not score

from .encoding import Encoded, encode_segments
from .formats import Example
from .templates import Template

__all__ = ["IGNORE_INDEX", "Encoded", "EpochDataset", "build_rows", "encode_segments", "pad_rows"]


@dataclass
class EncodeStats:
    examples: int = 0
    truncated: int = 0  # cut to max_length, some reply tokens kept
    dropped_too_long: int = 0  # longer than max_length with too_long: drop
    dropped_no_target: int = 0  # nothing trained left after truncation (prompt fills max_length)
    rows: int = 0
    tokens: int = 0  # real (non-pad) tokens in the rows
    target_tokens: int = 0  # tokens that carry loss
    max_example_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def encode_example(example: Example, template: Template | None, tok) -> Encoded:
    """Ids and trained flags; template None = a HF tokenizer's own chat template."""
    if template is None:
        from .chat_masks import encode_conversation

        return encode_conversation(example.turns, tok, None, example.system, example.context)
    return encode_segments(template.render(example.turns, example.context, example.system), tok)


def prompt_ids(example: Example, template: Template | None, tok) -> tuple[list[int], str]:
    """Prompt for the example's last reply (everything before it) and that reply's text."""
    turns = example.turns
    if template is None:
        from .chat_masks import encode_prompt

        return encode_prompt(turns[:-1], tok, None, example.system, example.context), turns[-1].content
    segments = template.render(turns[:-1], example.context, example.system, add_generation_cue=True)
    return encode_segments(segments, tok).ids, turns[-1].content


def fit_length(enc: Encoded, max_length: int, too_long: str, stats: EncodeStats) -> Encoded | None:
    """Truncate (or drop) an example longer than max_length; None if it has nothing to train."""
    stats.examples += 1
    stats.max_example_tokens = max(stats.max_example_tokens, len(enc.ids))
    if len(enc.ids) > max_length:
        if too_long == "drop":
            stats.dropped_too_long += 1
            return None
        enc = Encoded(enc.ids[:max_length], enc.targets[:max_length])
        if any(enc.targets[1:]):
            stats.truncated += 1
    if not any(enc.targets[1:]):  # position 0 is never predicted
        stats.dropped_no_target += 1
        return None
    return enc


def row_arrays(ids: list[int], targets: list[bool]) -> dict[str, np.ndarray]:
    """tokens, shifted labels (-100 where not trained) and loss_mask for one row."""
    tokens = np.asarray(ids, dtype=np.int64)
    labels = np.full(len(ids), IGNORE_INDEX, dtype=np.int64)
    trained = np.asarray(targets[1:], dtype=bool)
    labels[:-1][trained] = tokens[1:][trained]
    return {"tokens": tokens, "labels": labels, "loss_mask": (labels != IGNORE_INDEX).astype(np.float32)}


def build_rows(
    examples: list[Example],
    template: Template | None,
    tok,
    max_length: int,
    too_long: str = "truncate",
    packing: bool = False,
) -> tuple[list[dict[str, np.ndarray]], EncodeStats]:
    """Rows for training or held-out loss; stats count what was truncated or dropped."""
    stats = EncodeStats()
    encoded = [fit_length(encode_example(e, template, tok), max_length, too_long, stats) for e in examples]
    kept = [e for e in encoded if e is not None]
    rows: list[dict[str, np.ndarray]] = []
    if packing:
        ids: list[int] = []
        targets: list[bool] = []
        for enc in kept:
            if ids and len(ids) + len(enc.ids) > max_length:
                rows.append(row_arrays(ids, targets))
                ids, targets = [], []
            ids, targets = ids + enc.ids, targets + enc.targets
        if ids:
            rows.append(row_arrays(ids, targets))
    else:
        rows = [row_arrays(e.ids, e.targets) for e in kept]
    stats.rows = len(rows)
    stats.tokens = int(sum(len(r["tokens"]) for r in rows))
    stats.target_tokens = int(sum(r["loss_mask"].sum() for r in rows))
    return rows, stats


def pad_rows(rows: list[dict[str, np.ndarray]], pad_id: int, multiple: int = 8) -> dict[str, torch.Tensor]:
    """Right-pad rows to the longest (rounded up to `multiple`); pads carry no loss.

    Right padding is exact for a causal model: no real token attends to a later pad.
    """
    longest = max(len(r["tokens"]) for r in rows)
    length = -(-longest // multiple) * multiple
    out = {
        "tokens": torch.full((len(rows), length), pad_id, dtype=torch.long),
        "labels": torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long),
        "loss_mask": torch.zeros((len(rows), length), dtype=torch.float32),
    }
    for i, row in enumerate(rows):
        n = len(row["tokens"])
        for key in out:
            out[key][i, :n] = torch.from_numpy(row[key])
    return out


@dataclass
class EpochDataset:
    """Sample i of the training stream = row perm_e[i mod n] of epoch e = i // n.

    A pure function of i (and the seed), like the pretraining data: resume is exact and
    the number of ranks does not matter. `length` is the stream's length (steps x global
    batch for training; the row count for held-out data).
    """

    rows: list[dict[str, np.ndarray]]
    length: int = 0  # 0 = one pass over the rows
    seed: int = 0
    shuffle: bool = True
    _perms: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.length or len(self.rows)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} is outside the stream of {len(self)}")
        epoch, i = divmod(int(index), len(self.rows))
        if not self.shuffle:
            return self.rows[i]
        if epoch not in self._perms:
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))
        return self.rows[int(self._perms[epoch][i])]
