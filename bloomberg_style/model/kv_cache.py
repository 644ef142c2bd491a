"""Keys and values of the positions a model has already read, for generation.

A decoding step then runs the transformer on its new token only and attends from it to
every cached key: O(context) work per token instead of O(context^2) for re-reading the
whole context. ALiBi has no position table, so nothing else needs to be kept: the bias of
a new query against the cached keys follows from the positions alone (alibi.alibi_bias
with past_len).
"""

from __future__ import annotations

import torch


class KVCache:
    """Per layer, keys and values [batch, heads, positions, head_dim] in preallocated buffers.

    `capacity` sizes the buffers (prompt + new tokens avoids any copy); past it they
    double. The buffers take the dtype and device of the first keys stored, so they match
    what the attention computes under autocast too. `length` counts the positions stored;
    the model advances it once all layers have stored a forward's keys.
    """

    def __init__(self, capacity: int = 0) -> None:
        self.capacity = int(capacity)
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store layer `layer`'s new k, v [batch, heads, new, head_dim] after the cached positions;
        return that layer's keys and values for all positions so far."""
        start, stop = self.length, self.length + k.shape[2]
        if layer == len(self.keys):  # the first forward: this layer's buffers
            size = max(self.capacity, stop)
            self.keys.append(k.new_empty(*k.shape[:2], size, k.shape[3]))
            self.values.append(v.new_empty(*v.shape[:2], size, v.shape[3]))
        elif layer > len(self.keys):
            raise ValueError(f"layer {layer} stored before layer {len(self.keys)}")
        if stop > self.keys[layer].shape[2]:
            self.keys[layer] = self._grow(self.keys[layer], start, 2 * stop)
            self.values[layer] = self._grow(self.values[layer], start, 2 * stop)
        self.keys[layer][:, :, start:stop] = k
        self.values[layer][:, :, start:stop] = v
        if start == 0:  # nothing cached before: the new keys are all the keys (and stay contiguous)
            return k, v
        return self.keys[layer][:, :, :stop], self.values[layer][:, :, :stop]

    def advance(self, n: int) -> None:
        """Count `n` more positions as stored (after every layer's update of one forward)."""
        self.length += n

    @staticmethod
    def _grow(buffer: torch.Tensor, used: int, size: int) -> torch.Tensor:
        bigger = buffer.new_empty(*buffer.shape[:2], size, buffer.shape[3])
        bigger[:, :, :used] = buffer[:, :, :used]
        return bigger
