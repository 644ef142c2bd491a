"""Named entities as text the model writes, and entity-level F1 (BloombergGPT's NER score).

A sentence's answer lists its entities in order, "Ayla Ltd (ORG); John Smith (PER)", or
"none". Entity-level F1 counts an entity as right only when its text and type both match
a gold entity (each gold entity matched at most once); counts are summed over the task
(micro F1), on the types in SCORED (PER, ORG, LOC: the paper drops MISC).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

SCORED = ("PER", "ORG", "LOC")
NONE = "none"
_ENTITY = re.compile(r"^(?P<text>.+?)\s*\((?P<type>[A-Z]+)\)$")


def format_entities(entities: Sequence[tuple[str, str]]) -> str:
    """[(type, text), ...] -> "text (TYPE); text (TYPE)" or "none"."""
    return "; ".join(f"{text} ({kind})" for kind, text in entities) or NONE


def parse_entities(answer: str) -> list[tuple[str, str]]:
    """The model's answer -> [(type, text)]; pieces that are not "text (TYPE)" are dropped."""
    out = []
    for piece in answer.strip().split(";"):
        match = _ENTITY.match(piece.strip())
        if match:
            out.append((match["type"], " ".join(match["text"].split())))
    return out


def entity_counts(
    gold: Sequence[tuple[str, str]], predicted: Sequence[tuple[str, str]]
) -> tuple[int, int, int]:
    """(true positives, predicted, gold) on the SCORED types of one sentence."""
    g = Counter((k, t) for k, t in gold if k in SCORED)
    p = Counter((k, t) for k, t in predicted if k in SCORED)
    return sum((g & p).values()), sum(p.values()), sum(g.values())


def entity_f1(
    gold: Sequence[Sequence[tuple[str, str]]], predicted: Sequence[Sequence[tuple[str, str]]]
) -> float:
    """Micro entity-level F1 over sentences; 1.0 when there is nothing to find and nothing found."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predictions")
    tp = n_pred = n_gold = 0
    for g, p in zip(gold, predicted):
        a, b, c = entity_counts(g, p)
        tp, n_pred, n_gold = tp + a, n_pred + b, n_gold + c
    if n_pred == 0 and n_gold == 0:
        return 1.0
    return 2 * tp / (n_pred + n_gold)
