"""FiQA 2018 task 1 (aspect sentiment): the headline and post JSON files,
`{id: {"sentence": ..., "info": [{"target", "sentiment_score", "aspects", "snippets"}]}}`.

One example per (sentence, target). The score, an annotators' mean in [-1, 1], becomes a
class the way BloombergGPT evaluated FiQA SA as classification:

    score <= -0.1  negative      -0.1 < score < 0.1  neutral      score >= 0.1  positive

(NEUTRAL_BAND below; the paper does not print its cut points, these are ours.) Rows are
split by a hash of (seed, file, id, target), as the JSON has no line per row. 5 shots.
"""

from __future__ import annotations

import math
from typing import Any

from bloomberg_style.evaluation.converters import ConvertError, Source, read_json

NEUTRAL_BAND = 0.1
HEADER = {
    "task": "fiqa-sa",
    "description": "FiQA 2018 task 1 aspect sentiment, scores cut at +-0.1, converted from the published JSON",
    "prompt": "{text}\nQuestion: what is the sentiment on {target}?\nAnswer:",
    "labels": {"positive": "positive", "negative": "negative", "neutral": "neutral"},
    "shots": 5,
    "metric": "weighted_f1",
}


def label_of(score: float) -> str:
    if score <= -NEUTRAL_BAND:
        return "negative"
    if score >= NEUTRAL_BAND:
        return "positive"
    return "neutral"


def convert(sources: list[Source]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records = []
    for source in sources:
        data = read_json(source)
        if not isinstance(data, dict):
            raise ConvertError(
                f"{source.path}: expected a JSON object {{id: entry}}, got {type(data).__name__}"
            )
        for row, (key, entry) in enumerate(data.items(), 1):
            where = f"{source.path}: entry {key!r}"
            if not isinstance(entry, dict) or not isinstance(entry.get("sentence"), str):
                raise ConvertError(f"{where}: needs a string 'sentence'")
            info = entry.get("info")
            if not isinstance(info, list) or not info:
                raise ConvertError(f"{where}: needs a non-empty 'info' list")
            for j, item in enumerate(info):
                if not isinstance(item, dict) or not isinstance(item.get("target"), str):
                    raise ConvertError(f"{where}: info[{j}] needs a string 'target'")
                try:
                    score = float(item.get("sentiment_score"))
                except (TypeError, ValueError):
                    score = math.nan
                if not -1.0 <= score <= 1.0:
                    raise ConvertError(
                        f"{where}: info[{j}].sentiment_score {item.get('sentiment_score')!r} is not a number in [-1, 1]"
                    )
                records.append(
                    {
                        "text": entry["sentence"].strip(),
                        "target": item["target"].strip(),
                        "label": label_of(score),
                        "id": str(key),
                        "split": source.split_of(row * 1000 + j),
                    }
                )
    return dict(HEADER), records
