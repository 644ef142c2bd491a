"""Sampling from the model: temperature, top-k, top-p (nucleus), a stop token, streaming.

Our BLOOM keeps a KV cache (model/kv_cache.py): after the prompt, each new token is one
forward of one position against the cached keys, and the tokens equal those of re-reading
the whole context (use_cache=False, tests/test_kv_cache.py). A Hugging Face base generates
through transformers' `generate` with its KV cache on (hf_generate_ids); generate_text
picks the path from the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from bloomberg_style.model.kv_cache import KVCache


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
    use_cache: bool = True,
) -> Iterator[int]:
    """Yield new token ids one by one; stops at a stop id (not yielded) or max_new_tokens.

    vocab_limit > 0 masks the padding rows of the embedding (ids the tokenizer lacks).
    With max_context, once the window slides past the prompt's start each step re-reads
    the window (a cache cannot drop its oldest token: the states of the others saw it).
    """
    cfg.validate()
    generator = None
    if cfg.seed is not None:
        generator = torch.Generator().manual_seed(cfg.seed)
    device = next(model.parameters()).device
    ids = list(prompt)
    if not ids:
        raise ValueError("the prompt is empty")
    cache = KVCache(capacity=len(ids) + cfg.max_new_tokens) if use_cache else None
    for _ in range(cfg.max_new_tokens):
        context = ids[-cfg.max_context :] if cfg.max_context else ids
        if cache is not None and len(context) < len(ids):  # the window slid: re-read it from now on
            cache = None
        if cache is not None:  # the positions the cache has not seen (the prompt, then one token)
            new = torch.tensor([ids[cache.length :]], device=device)
            logits = model(new, cache=cache, logits_to_keep=1)[0, -1].float().cpu()
        else:
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


@torch.no_grad()
def hf_generate_ids(
    model: torch.nn.Module,
    prompt: list[int],
    cfg: SamplingConfig,
    stop_ids: tuple[int, ...] = (),
    vocab_limit: int = 0,
    use_cache: bool = True,
    on_token=None,
) -> list[int]:
    """New token ids from a transformers (or peft) causal LM's `generate`, the stop id dropped.

    The same sampling as generate_ids (temperature, top-k, top-p; 0 = greedy); the model's
    own generation_config.eos_token_id stops it too. A seed seeds torch's global generator,
    which transformers samples from. `on_token(id)` is called as each token is produced.
    """
    from transformers import LogitsProcessor, LogitsProcessorList
    from transformers.generation.streamers import BaseStreamer

    cfg.validate()
    if not prompt:
        raise ValueError("the prompt is empty")
    ids = prompt[-cfg.max_context :] if cfg.max_context else list(prompt)
    device = next(model.parameters()).device
    input_ids = torch.tensor([ids], device=device)
    own_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    own_eos = [own_eos] if isinstance(own_eos, int) else list(own_eos or [])
    stops = sorted({*stop_ids, *own_eos})

    class _Limit(LogitsProcessor):  # padding rows of the embedding the tokenizer lacks
        def __call__(self, input_ids, scores):
            scores[:, vocab_limit:] = float("-inf")
            return scores

    class _Tokens(BaseStreamer):
        def __init__(self):
            self.first = True

        def put(self, value):
            if self.first:  # generate hands the prompt over first
                self.first = False
                return
            for t in value.flatten().tolist():
                if t not in stops and on_token:
                    on_token(int(t))

        def end(self):
            pass

    sampling = {}
    if cfg.temperature > 0:
        if cfg.seed is not None:
            torch.manual_seed(cfg.seed)
        sampling = dict(do_sample=True, temperature=cfg.temperature, top_k=cfg.top_k or None, top_p=cfg.top_p)
    else:
        sampling = dict(do_sample=False, temperature=None, top_k=None, top_p=None)
    processors = LogitsProcessorList([_Limit()]) if vocab_limit and vocab_limit < _vocab(model) else None
    out = model.generate(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=cfg.max_new_tokens,
        eos_token_id=stops or None,
        pad_token_id=stops[0] if stops else None,
        use_cache=use_cache,
        logits_processor=processors,
        streamer=_Tokens() if on_token else None,
        **sampling,
    )
    new = out[0, input_ids.shape[1] :].tolist()
    for i, t in enumerate(new):
        if t in stops:
            return new[:i]
    return new


def _vocab(model: torch.nn.Module) -> int:
    return int(model.get_output_embeddings().weight.shape[0])


def generate_text(model, tok, prompt: list[int], cfg: SamplingConfig, on_text=None) -> str:
    """The reply as text; `on_text(piece)` is called as pieces become printable (streaming).

    Our BLOOM samples with generate_ids; a HF base with transformers' generate (KV cache).
    """
    from bloomberg_style.artifacts.hf_base import hf_model_of

    stream = TextStream(tok)

    def push(token: int) -> None:
        piece = stream.push(token)
        if piece and on_text:
            on_text(piece)

    hf = hf_model_of(model)
    if hf is not None:
        hf_generate_ids(hf, prompt, cfg, stop_ids=(tok.eod_id,), vocab_limit=tok.vocab_size, on_token=push)
    else:
        for token in generate_ids(model, prompt, cfg, stop_ids=(tok.eod_id,), vocab_limit=tok.vocab_size):
            push(token)
    tail = stream.flush()
    if tail and on_text:
        on_text(tail)
    return stream.emitted
