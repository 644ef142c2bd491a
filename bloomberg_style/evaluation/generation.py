"""Batched greedy decoding without a cache, for ZeRO-3 evaluation (evaluation/sharded.py).

Generation-scored tasks (NER, ConvFinQA) decode with model/generate.py's KV cache whenever
one process holds the whole model; this loop is for the partitioned model, whose `agree`
makes every rank take rank 0's tokens so all ranks run the same forwards.

Placed in evaluation/ (not sft/, which sits above evaluation in the layer order). Prompts
are right-padded into one batch; with causal attention a row's real tokens never see the
padding after them, so each row reads its next-token logits at its own last position and
the batch decodes together. Rows that hit a stop id or a stop string leave the batch.

Without a KV cache every step re-reads the whole context: O(new tokens x context) per row.
A cached path plugs in at `next_logits`: any callable (model, batch [B, T], last [B]) ->
logits [B, vocab] can be passed as `step`, e.g. one that keeps past keys/values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from bloomberg_style.evaluation.scoring import PAD_ID, model_device

Step = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def next_logits(model: torch.nn.Module, batch: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """Logits [B, vocab] at position last[b] of each row (a full forward pass; no cache)."""
    out = model(batch)
    logits = out.logits if hasattr(out, "logits") else out
    return logits[torch.arange(batch.shape[0], device=batch.device), last].float()


@torch.no_grad()
def greedy_generate(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    *,
    stop_ids: Sequence[int] = (),
    stop_when: Callable[[list[int]], bool] | None = None,
    vocab_limit: int = 0,
    batch_size: int = 8,
    step: Step = next_logits,
) -> list[list[int]]:
    """New token ids for each prompt (argmax each step), in prompt order.

    A row stops at a stop id (not kept), when stop_when(new ids) is true (kept), or after
    max_new_tokens. vocab_limit > 0 never picks ids >= it (embedding rows past the tokenizer).
    A model with an `agree(tokens)` method (the ZeRO-3 wrapper) decides each step's tokens
    through it, so ranks that must run the same forwards stop at the same step.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if any(not p for p in prompts):
        raise ValueError("a prompt is empty")
    model.eval()
    device = model_device(model)
    agree = getattr(model, "agree", None)  # ZeRO-3 (evaluation/sharded.py): rank 0's tokens on every rank
    results: list[list[int]] = [[] for _ in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # similar lengths batch together
    for b in range(0, len(order), batch_size):
        active = list(order[b : b + batch_size])
        rows = {i: list(prompts[i]) for i in active}
        for _ in range(max_new_tokens):
            if not active:
                break
            width = max(len(rows[i]) for i in active)
            batch = torch.full((len(active), width), PAD_ID, dtype=torch.long)
            for r, i in enumerate(active):
                batch[r, : len(rows[i])] = torch.as_tensor(rows[i], dtype=torch.long)
            last = torch.tensor([len(rows[i]) - 1 for i in active])
            logits = step(model, batch.to(device), last.to(device))
            if vocab_limit:
                logits[:, vocab_limit:] = float("-inf")
            picked = logits.argmax(dim=-1)
            chosen = (agree(picked) if agree is not None else picked).tolist()
            still = []
            for i, token in zip(active, chosen):
                if token in stop_ids:
                    continue
                rows[i].append(token)
                results[i].append(token)
                if stop_when is None or not stop_when(results[i]):
                    still.append(i)
            active = still
    return results
