"""Batched greedy decoding of prompts of different lengths, for generation-scored evaluation.

The prompts of a batch are left-padded to one length, so every row's next token is the
last column; the padding is masked out of attention (BloomForCausalLM.decoding_bias) and,
because ALiBi depends only on the distance between real tokens, each row decodes exactly
as it would alone. One KV cache serves the batch: after the prompt each step reads one
token per row.

Works for our BloomForCausalLM (and a peft LoRA wrapper around it) and for a transformers
causal LM (its own `generate`, left-padded the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from .kv_cache import KVCache


@torch.no_grad()
def greedy_generate(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_ids: Iterable[int] = (),
    pad_id: int = 0,
    vocab_limit: int = 0,
    batch_size: int = 16,
    stop_when: Callable[[list[int]], bool] | None = None,
) -> list[list[int]]:
    """The greedy continuation of each prompt (token ids), cut before its first stop id.

    Prompts are decoded `batch_size` at a time, longest first (less padding); the answers
    come back in the prompts' order. vocab_limit > 0 never picks ids >= vocab_limit (the
    embedding's padding rows the tokenizer lacks). pad_id only fills positions nobody reads.
    stop_when(new ids) true ends a row there, that token kept (a stop string: a task's answer
    ends at a newline long before max_new_tokens); a batch ends when all its rows have.
    A transformers model also stops at its generation_config's eos_token_id.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    empty = [i for i, p in enumerate(prompts) if len(p) == 0]
    if empty:
        raise ValueError(f"prompt {empty[0]} is empty")
    hf = getattr(model, "generation_config", None) is not None  # a transformers (or peft) model
    own_eos = getattr(model.generation_config, "eos_token_id", None) if hf else None
    stops = sorted({*stop_ids, *([own_eos] if isinstance(own_eos, int) else (own_eos or []))})
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    answers: list[list[int]] = [[] for _ in prompts]
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids, mask = left_pad([prompts[i] for i in rows], pad_id, _device(model))
            if hf:
                new = _hf_greedy(model, ids, mask, max_new_tokens, stops, pad_id, vocab_limit).tolist()
                ends = [_stop_length(tokens, stop_when) for tokens in new]
            else:
                new, ends = _cached_greedy(
                    model, ids, mask, max_new_tokens, stops, pad_id, vocab_limit, stop_when
                )
            for row, tokens, end in zip(rows, new, ends):
                answers[row] = cut_at_stop(tokens[:end], stops)
    finally:
        model.train(was_training)
    return answers


def left_pad(
    prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [batch, longest], attention_mask [batch, longest]) with each prompt at the right end
    and 0 in the mask where padding is."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.as_tensor(list(prompt), dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def cut_at_stop(tokens: list[int], stops: Sequence[int]) -> list[int]:
    """tokens up to (not including) the first stop id."""
    for i, t in enumerate(tokens):
        if t in stops:
            return tokens[:i]
    return tokens


def _stop_length(tokens: list[int], stop_when: Callable[[list[int]], bool] | None) -> int | None:
    """How many of tokens a row keeps under stop_when (None: all), checked as they were generated."""
    if stop_when is not None:
        for n in range(1, len(tokens) + 1):
            if stop_when(tokens[:n]):
                return n
    return None


def _cached_greedy(
    model, ids, mask, max_new_tokens, stops, pad_id, vocab_limit, stop_when=None
) -> tuple[list[list[int]], list[int | None]]:
    """(new tokens per row, each row's stop_when length or None) from our BLOOM with a KV cache;
    the loop ends when every row has emitted a stop id or met stop_when."""
    cache = KVCache(capacity=ids.shape[1] + max_new_tokens)
    stop_ids = torch.tensor(stops, dtype=torch.long, device=ids.device)
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    rows: list[list[int]] = [[] for _ in range(ids.shape[0])]
    ends: list[int | None] = [None] * ids.shape[0]
    step, out = ids, []
    for _ in range(max_new_tokens):
        logits = model(step, attention_mask=mask, cache=cache, logits_to_keep=1)[:, -1].float()
        if vocab_limit:
            logits[:, vocab_limit:] = float("-inf")
        token = torch.where(done, torch.full_like(done, pad_id, dtype=torch.long), logits.argmax(dim=-1))
        out.append(token)
        done |= torch.isin(token, stop_ids)
        if stop_when is not None:  # one host read per step, as done.all() below already costs
            for r, (t, stopped) in enumerate(zip(token.tolist(), done.tolist())):
                if ends[r] is None and not stopped:
                    rows[r].append(t)
                    if stop_when(rows[r]):
                        ends[r] = len(rows[r])
            done |= torch.tensor([e is not None for e in ends], device=done.device)
        if bool(done.all()):
            break
        step = token[:, None]
        mask = torch.cat([mask, torch.ones_like(step)], dim=1)  # generated tokens are real, even after a stop
    return torch.stack(out, dim=1).tolist(), ends


def _hf_greedy(model, ids, mask, max_new_tokens, stops, pad_id, vocab_limit) -> torch.Tensor:
    """New tokens [batch, <= max_new_tokens] from transformers' generate (its own KV cache)."""
    from transformers import LogitsProcessor, LogitsProcessorList

    class _Limit(LogitsProcessor):
        def __call__(self, input_ids, scores):
            scores[:, vocab_limit:] = float("-inf")
            return scores

    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        temperature=None,
        top_k=None,
        top_p=None,
        eos_token_id=list(stops) or None,
        pad_token_id=pad_id,
        logits_processor=LogitsProcessorList([_Limit()]) if vocab_limit else None,
    )
    return out[:, ids.shape[1] :]


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
