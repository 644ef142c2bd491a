"""Conversations -> token ids and loss masks for a HF base, with its own chat template.

Loss is on every assistant reply (and the end-of-turn text the template puts after it), on
nothing else. With a chat template (tokenizer_config.json) the reply spans are found by
rendering the conversation prefix by prefix:

    prefix_i = render(messages before reply i, add_generation_prompt=True)
    upto_i   = render(messages up to and including reply i)
    reply i  = characters [len(prefix_i), len(upto_i)) of the full rendering

which holds only if each rendering is a prefix of the full one (checked; a template that
rewrites earlier turns is refused with its name). The full text is then tokenised once and
a token is trained when its characters lie inside a reply span; a token that crosses a
span boundary is not trained and is counted (`straddling`), so a mask never silently
shifts. Without a chat template our templates (sft/templates.py) render the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bloomberg_style.artifacts.hf_base import HFBaseError, HFTokenizer
from bloomberg_style.model.model import IGNORE_INDEX

from .encoding import Encoded, encode_segments
from .templates import ASSISTANT, SYSTEM, Template, Turn, check_turns


@dataclass
class ChatEncoding(Encoded):
    straddling: int = 0  # tokens crossing a reply boundary (not trained)


def messages_of(turns: list[Turn], system: str | None = None, context: str = "") -> list[dict]:
    """HF chat messages; an Alpaca `input` (context) joins the first user message."""
    messages = [{"role": SYSTEM, "content": system}] if system else []
    for i, turn in enumerate(turns):
        content = turn.content
        if i == 0 and context:
            content = f"{content}\n\n{context}"
        messages.append({"role": turn.role, "content": content})
    return messages


def _render(tok: HFTokenizer, messages: list[dict], cue: bool) -> str:
    return tok.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=cue)


def reply_spans(tok: HFTokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The full rendering and the character span of every assistant reply in it."""
    full = _render(tok, messages, cue=False)
    spans = []
    for m, message in enumerate(messages):
        if message["role"] != ASSISTANT:
            continue
        prefix = _render(tok, messages[:m], cue=True)
        upto = _render(tok, messages[: m + 1], cue=False)
        if not (upto.startswith(prefix) and full.startswith(upto)):
            raise HFBaseError(
                f"the chat template of {tok.hf.name_or_path or 'this tokenizer'} does not render "
                "conversations prefix by prefix (it rewrites earlier turns), so reply tokens cannot be "
                "located; give the stage one of our templates instead (template: NAME)"
            )
        region = upto[len(prefix) :]
        content = message["content"].strip()
        at = region.find(content) if content else 0
        if at < 0:
            raise HFBaseError(
                f"the chat template of {tok.hf.name_or_path or 'this tokenizer'} changes the reply text "
                f"of turn {m}; give the stage one of our templates instead (template: NAME)"
            )
        # A reply header the template emits anyway (add_generation_prompt ignored) is not trained.
        start = len(prefix) + (at if region[:at].strip() else 0)
        spans.append((start, len(upto)))
    return full, spans


def encode_chat(tok: HFTokenizer, messages: list[dict]) -> ChatEncoding:
    full, spans = reply_spans(tok, messages)
    enc = tok.hf(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    targets, straddling = [], 0
    for s, e in offsets:
        inside = any(a <= s and e <= b for a, b in spans) and e > s
        crosses = any(s < a < e or s < b < e for a, b in spans)
        straddling += int(crosses)
        targets.append(inside and not crosses)
    return ChatEncoding(ids, targets, straddling)


def encode_conversation(
    turns: list[Turn],
    tok: HFTokenizer,
    template: Template | None = None,
    system: str | None = None,
    context: str = "",
) -> Encoded:
    """Ids and targets of a training conversation (ends with an assistant reply).

    The tokenizer's chat template when it has one and no template of ours is given; else
    ours (each reply followed by the eos token, as for our BLOOM).
    """
    check_turns(turns, ends_with_user=False)
    if template is None and tok.chat_template:
        return encode_chat(tok, messages_of(turns, system, context))
    if template is None:
        raise HFBaseError(
            f"{tok.hf.name_or_path or 'the tokenizer'} has no chat template; name one of ours (template: NAME)"
        )
    return encode_segments(template.render(turns, context, system), tok)


def encode_prompt(
    turns: list[Turn],
    tok: HFTokenizer,
    template: Template | None = None,
    system: str | None = None,
    context: str = "",
) -> list[int]:
    """Ids of a prompt that ends with a user turn, followed by the cue for the reply."""
    check_turns(turns, ends_with_user=True)
    if template is None and tok.chat_template:
        text = _render(tok, messages_of(turns, system, context), cue=True)
        return list(tok.hf(text, add_special_tokens=False)["input_ids"])
    if template is None:
        raise HFBaseError(f"{tok.hf.name_or_path or 'the tokenizer'} has no chat template; name one of ours")
    return encode_segments(template.render(turns, context, system, add_generation_cue=True), tok).ids


def hf_batch(rows: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask (from row lengths, so pad = eos is safe) and
    transformers-style labels (unshifted; -100 on prompt and padding)."""
    longest = max(len(r.ids) for r in rows)
    input_ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
    labels = torch.full((len(rows), longest), IGNORE_INDEX, dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r.ids)
        ids = torch.tensor(r.ids, dtype=torch.long)
        input_ids[i, :n] = ids
        attention_mask[i, :n] = 1
        trained = torch.tensor(r.targets, dtype=torch.bool)
        labels[i, :n] = torch.where(trained, ids, torch.full_like(ids, IGNORE_INDEX))
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
