"""CoNLL-style NER files (the paper's financial NER, Salinas Alvarado et al. 2015): one
token a line with its tag in the last column (`Apple NNP B-ORG` or `Apple B-ORG`), a blank
line between sentences, `-DOCSTART-` lines skipped. Tags: O, and B-/I- (IOB1 or IOB2) of
PER, ORG, LOC, MISC; anything else is an error naming the line.

Generation task, 20 shots (Table 8): the answer is the sentence's PER / ORG / LOC entities
in order, "Apple (ORG); Tim Cook (PER)", or "none" (MISC is dropped, as the paper scores
PER, ORG and LOC only). Scored by entity-level F1 (evaluation/entities.py).
"""

from __future__ import annotations

from typing import Any

from bloomberg_style.evaluation.converters import ConvertError, Source, read_lines
from bloomberg_style.evaluation.entities import SCORED, format_entities

TYPES = ("PER", "ORG", "LOC", "MISC")
HEADER = {
    "task": "ner",
    "type": "generation",
    "description": "Financial NER (CoNLL format), entities as 'text (TYPE); ...', entity-level F1 on PER/ORG/LOC",
    "prompt": "{text}\nEntities:",
    "shots": 20,
    "metric": "entity_f1",
    "max_new_tokens": 48,
}


def entities_of(tokens: list[str], tags: list[str]) -> list[tuple[str, str]]:
    """[(type, text)] from IOB1/IOB2 tags: an entity starts at B-X, or at I-X after O or another type."""
    spans: list[tuple[str, list[str]]] = []
    previous = "O"
    for token, tag in zip(tokens, tags):
        if tag == "O":
            previous = "O"
            continue
        prefix, kind = tag.split("-", 1)
        if prefix == "B" or previous != kind:
            spans.append((kind, [token]))
        else:
            spans[-1][1].append(token)
        previous = kind
    return [(kind, " ".join(words)) for kind, words in spans]


def _sentence(source: Source, line: int, tokens: list[str], tags: list[str]) -> dict[str, Any]:
    entities = [(k, t) for k, t in entities_of(tokens, tags) if k in SCORED]
    return {
        "text": " ".join(tokens),
        "target": format_entities(entities),
        "entities": [list(e) for e in entities],
        "split": source.split_of(line),
    }


def convert(sources: list[Source]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records = []
    for source in sources:
        tokens: list[str] = []
        tags: list[str] = []
        first = 0
        for number, line in [*read_lines(source), (0, "")]:  # (0, ""): flush the last sentence
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                if tokens:
                    records.append(_sentence(source, first, tokens, tags))
                tokens, tags = [], []
                continue
            if len(parts) < 2:
                raise ConvertError(f"{source.path}:{number}: expected 'token ... tag', got {line!r}")
            tag = parts[-1]
            if tag != "O" and not (tag[:2] in ("B-", "I-") and tag[2:] in TYPES):
                raise ConvertError(f"{source.path}:{number}: tag {tag!r} is not O or B-/I- of {list(TYPES)}")
            if not tokens:
                first = number
            tokens.append(parts[0])
            tags.append(tag)
    return dict(HEADER), records
