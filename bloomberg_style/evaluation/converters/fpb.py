"""Financial PhraseBank (Malo et al. 2014): `Sentences_{50,66,75,All}Agree.txt`, one
`sentence@label` a line, label positive / negative / neutral.

Encoding: the 50/66/75Agree files are ISO-8859-1 and AllAgree is UTF-8 as published; a
file is read as UTF-8 when it decodes as UTF-8 and as ISO-8859-1 otherwise (which
decodes any bytes, so the rule is deterministic and round-trips both releases).
5 shots, as BloombergGPT (Table 8); the prompt is the one configs/eval/fpb_demo.jsonl uses.
"""

from __future__ import annotations

from typing import Any

from bloomberg_style.evaluation.converters import ConvertError, Source, read_lines

LABELS = ("positive", "negative", "neutral")
HEADER = {
    "task": "fpb",
    "description": "Financial PhraseBank sentiment (Malo et al. 2014), converted from the published files",
    "prompt": "{text}\nQuestion: what is the sentiment?\nAnswer:",
    "labels": {label: label for label in LABELS},
    "shots": 5,
    "metric": "weighted_f1",
}


def encoding_of(source: Source) -> str:
    try:
        source.path.read_bytes().decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "iso-8859-1"


def convert(sources: list[Source]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records = []
    for source in sources:
        for number, line in read_lines(source, encoding_of(source)):
            if not line.strip():
                continue
            text, sep, label = line.rpartition("@")
            label = label.strip()
            if not sep or not text.strip():
                raise ConvertError(f"{source.path}:{number}: expected 'sentence@label', got {line[:80]!r}")
            if label not in LABELS:
                raise ConvertError(f"{source.path}:{number}: label {label!r} is not one of {list(LABELS)}")
            records.append({"text": text.strip(), "label": label, "split": source.split_of(number)})
    return dict(HEADER), records
