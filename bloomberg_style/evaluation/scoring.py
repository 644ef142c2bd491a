"""Model forward passes for evaluation: per-token log-likelihoods, batched, FP32 log-softmax.

Two shapes of question, one primitive each:

    target_nats            a long token stream cut into rows of seq_len targets (the way the
                           trainer cuts documents), -log p(token | the row so far) for every
                           token after the first
    continuation_logprobs  many (tokens, start) requests: sum of log p over tokens[start:]
                           given everything before, for few-shot choice scoring

Sequences in a batch are right-padded: a causal model never lets a later position change an
earlier one, so padding after a sequence cannot change its scores (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

PAD_ID = 0  # any valid id: padded positions are never read


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


HEAD_CHUNK = 1024  # positions per LM-head call: bounds the [positions, vocab] logits in memory


def selected_nll(model: torch.nn.Module, batch: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
    """Nats of batch[:, t + 1] given batch[:, : t + 1] at every selected t (row-major order).

    Only the selected positions go through the LM head, HEAD_CHUNK at a time, so a
    131,072-token vocabulary never needs logits for a whole batch. The log-softmax runs
    in FP32. Models without `hidden_states` (any causal LM returning logits) also work. A model
    with its own `selected_nll` runs it instead (evaluation/sharded.py's ZeRO-3 wrapper: the
    whole batch as one forward of the module DeepSpeed wraps).
    """
    own = getattr(model, "selected_nll", None)
    if own is not None:
        return own(batch, select)
    inputs, targets = batch[:, :-1], batch[:, 1:][select]
    if hasattr(model, "hidden_states") and hasattr(model, "lm_head"):
        hidden = model.hidden_states(inputs)[select]  # [k, hidden]
        return torch.cat(
            [
                F.cross_entropy(
                    model.lm_head(hidden[i : i + HEAD_CHUNK]).float(),
                    targets[i : i + HEAD_CHUNK],
                    reduction="none",
                )
                for i in range(0, len(hidden), HEAD_CHUNK)
            ]
        )
    out = model(inputs)
    logits = getattr(out, "logits", out)[select]  # transformers models return an output object
    return F.cross_entropy(logits.float(), targets, reduction="none")


@torch.no_grad()
def target_nats(model: torch.nn.Module, stream: np.ndarray, seq_len: int, batch_size: int = 8) -> np.ndarray:
    """Nats of stream[1:], each predicted from at most seq_len previous tokens of its row.

    Row r holds stream[r*L : r*L + L + 1]: inputs are its first L tokens, targets its last
    L, so consecutive rows share one token and every token after the first is a target
    exactly once. The context resets at each row start, as in training.
    """
    if seq_len < 1 or batch_size < 1:
        raise ValueError(f"seq_len and batch_size must be >= 1, got {seq_len} and {batch_size}")
    stream = np.asarray(stream, dtype=np.int64)
    n_targets = len(stream) - 1
    if n_targets < 1:
        raise ValueError("a stream needs at least two tokens to score one")
    model.eval()
    device = model_device(model)
    starts = list(range(0, n_targets, seq_len))
    out = np.empty(n_targets, dtype=np.float64)
    for b in range(0, len(starts), batch_size):
        first = starts[b]
        rows = [stream[s : s + seq_len + 1] for s in starts[b : b + batch_size]]
        width = max(len(r) for r in rows)
        batch = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
        select = torch.zeros((len(rows), width - 1), dtype=torch.bool)
        for i, row in enumerate(rows):
            batch[i, : len(row)] = torch.from_numpy(row)
            select[i, : len(row) - 1] = True
        # Rows are consecutive, so the selected targets in row-major order are stream[first + 1 : ...]
        nll = selected_nll(model, batch.to(device), select.to(device)).double().cpu().numpy()
        out[first : first + len(nll)] = nll
    return out


@torch.no_grad()
def continuation_logprobs(
    model: torch.nn.Module, requests: Sequence[tuple[Sequence[int], int]], batch_size: int = 8
) -> list[tuple[float, int]]:
    """For each (tokens, start): (sum of log p(tokens[t] | tokens[:t]) for t >= start, count).

    start must be >= 1 (the first token has nothing to be predicted from). Requests are
    run longest first so each batch pads little; results come back in request order.
    """
    for i, (tokens, start) in enumerate(requests):
        if not 1 <= start < len(tokens):
            raise ValueError(
                f"request {i}: start {start} must be in [1, {len(tokens)}) for {len(tokens)} tokens"
            )
    model.eval()
    device = model_device(model)
    order = sorted(range(len(requests)), key=lambda i: -len(requests[i][0]))
    results: list[tuple[float, int]] = [(0.0, 0)] * len(requests)
    for b in range(0, len(order), batch_size):
        chunk = order[b : b + batch_size]
        width = len(requests[chunk[0]][0])
        batch = torch.full((len(chunk), width), PAD_ID, dtype=torch.long)
        for row, i in enumerate(chunk):
            tokens = requests[i][0]
            batch[row, : len(tokens)] = torch.as_tensor(list(tokens), dtype=torch.long)
        select = torch.zeros((len(chunk), width - 1), dtype=torch.bool)
        for row, i in enumerate(chunk):
            tokens, start = requests[i]
            select[row, start - 1 : len(tokens) - 1] = True  # position t - 1 predicts token t
        nll = selected_nll(model, batch.to(device), select.to(device)).double().cpu()
        counts = [len(requests[i][0]) - requests[i][1] for i in chunk]
        for i, part in zip(chunk, torch.split(nll, counts)):
            results[i] = (-float(part.sum()), len(part))
    return results
