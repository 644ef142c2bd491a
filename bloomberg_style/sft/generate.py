"""Sampling from the model: temperature, top-k, top-p (nucleus), a stop token, streaming.

No KV cache: every new token re-reads the whole context (fine for the CPU-scale models
this runs on in tests and demos; ALiBi needs no position table, so any length works).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class SamplingConfig:
    temperature: float = 0.7  # 0 = greedy
    top_k: int = 40  # keep the k most probable tokens (0 = all)
    top_p: float = 0.9  # keep the smallest set whose probability reaches p (1 = all)
    max_new_tokens: int = 128
    max_context: int = 0  # keep only the last N prompt tokens (0 = all)
    seed: int | None = None

    def validate(self) -> SamplingConfig:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        return self


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set to -inf every logit outside the top-k and outside the top-p nucleus ([vocab])."""
    logits = logits.clone()
    if top_k and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits[logits < kth] = float("-inf")
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p (the top one stays).
        before = torch.cumsum(probs, dim=-1) - probs
        drop = before >= top_p
        logits[order[drop]] = float("-inf")
    return logits


def next_token(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None = None) -> int:
    """One token from last-position logits [vocab]."""
    if cfg.temperature == 0:
        return int(torch.argmax(logits))
    logits = filter_logits(logits.float() / cfg.temperature, cfg.top_k, cfg.top_p)
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def generate_ids(
    model: torch.nn.Module,
    prompt: list[int],
    cfg: SamplingConfig,
    stop_ids: tuple[int, ...] = (),
    vocab_limit: int = 0,
) -> Iterator[int]:
    """Yield new token ids one by one; stops at a stop id (not yielded) or max_new_tokens.

    vocab_limit > 0 masks the padding rows of the embedding (ids the tokenizer lacks).
    """
    cfg.validate()
    generator = None
    if cfg.seed is not None:
        generator = torch.Generator().manual_seed(cfg.seed)
    device = next(model.parameters()).device
    ids = list(prompt)
    if not ids:
        raise ValueError("the prompt is empty")
    for _ in range(cfg.max_new_tokens):
        context = ids[-cfg.max_context :] if cfg.max_context else ids
        logits = model(torch.tensor([context], device=device))[0, -1].float().cpu()
        if vocab_limit:
            logits[vocab_limit:] = float("-inf")
        token = next_token(logits, cfg, generator)
        if token in stop_ids:
            return
        ids.append(token)
        yield token


class TextStream:
    """Turn a stream of token ids into text pieces, holding back a cut UTF-8 character."""

    def __init__(self, tok):
        self.tok = tok
        self.ids: list[int] = []
        self.emitted = ""

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tok.decode(self.ids)
        if text.endswith("\ufffd"):  # the last token ends inside a multi-byte character
            return ""
        piece, self.emitted = text[len(self.emitted) :], text
        return piece

    def flush(self) -> str:
        text = self.tok.decode(self.ids)
        piece, self.emitted = text[len(self.emitted) :], text
        return piece


def generate_text(model, tok, prompt: list[int], cfg: SamplingConfig, on_text=None) -> str:
    """The reply as text; `on_text(piece)` is called as pieces become printable (streaming)."""
    stream = TextStream(tok)
    for token in generate_ids(model, prompt, cfg, stop_ids=(tok.eod_id,), vocab_limit=tok.vocab_size):
        piece = stream.push(token)
        if piece and on_text:
            on_text(piece)
    tail = stream.flush()
    if tail and on_text:
        on_text(tail)
    return stream.emitted
