"""The gold news headline data set (Sinha & Khandait 2021): a comma- or tab-separated file
with a `News` column and one 0/1 column per question; BloombergGPT asks each as a yes/no
question (5 shots) and reports weighted F1.

Every column must be known: a question column (QUESTIONS, the paper's wording per column)
or a column that is not a question (IGNORED). An unknown column is an error, not a guess.
The delimiter is a tab if the header line has one, else a comma. One example per
(headline, question); all of a headline's questions share its split.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from bloomberg_style.evaluation.converters import ConvertError, Source

QUESTIONS = {
    "Price or Not": "Does the news headline talk about price?",
    "Direction Up": "Does the news headline talk about price going up?",
    "Direction Constant": "Does the news headline talk about price staying constant?",
    "Direction Down": "Does the news headline talk about price going down?",
    "PastPrice": "Does the news headline talk about price in the past?",
    "FuturePrice": "Does the news headline talk about price in the future?",
    "PastNews": "Does the news headline talk about a general event (apart from prices) in the past?",
    "FutureNews": "Does the news headline talk about a general event (apart from prices) in the future?",
    "Asset Comparision": "Does the news headline compare gold with any other asset?",  # the file's spelling
    "Asset Comparison": "Does the news headline compare gold with any other asset?",
}
IGNORED = ("Dates", "URL", "News", "Price Sentiment", "S.No.", "")
HEADER = {
    "task": "headline",
    "description": "Gold news headline yes/no questions (Sinha & Khandait 2021), converted from the published file",
    "prompt": "{text}\nQuestion: {question}\nAnswer:",
    "labels": {"yes": "Yes", "no": "No"},
    "shots": 5,
    "metric": "weighted_f1",
}


def convert(sources: list[Source]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records = []
    for source in sources:
        try:
            text = source.path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as err:
            raise ConvertError(f"{source.path}: not UTF-8 ({err.reason})") from None
        first = text.split("\n", 1)[0]
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if "\t" in first else ",")
        columns = [c.strip() for c in next(reader, [])]
        if "News" not in columns:
            raise ConvertError(f"{source.path}:1: no 'News' column (columns: {columns})")
        unknown = [c for c in columns if c not in QUESTIONS and c not in IGNORED]
        if unknown:
            raise ConvertError(
                f"{source.path}:1: unknown column(s) {unknown}; known questions: {sorted(QUESTIONS)}, "
                f"ignored: {[c for c in IGNORED if c]}"
            )
        asked = [c for c in columns if c in QUESTIONS]
        if not asked:
            raise ConvertError(f"{source.path}:1: no question column (known: {sorted(QUESTIONS)})")
        for values in reader:
            number = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(columns):
                raise ConvertError(
                    f"{source.path}:{number}: {len(values)} fields, the header has {len(columns)}"
                )
            row = dict(zip(columns, (v.strip() for v in values)))
            if not row["News"]:
                raise ConvertError(f"{source.path}:{number}: empty News")
            split = source.split_of(number)
            for column in asked:
                value = row[column]
                if value not in ("0", "1", "0.0", "1.0"):
                    raise ConvertError(
                        f"{source.path}:{number}: column {column!r} is {value!r}, expected 0 or 1"
                    )
                records.append(
                    {
                        "text": row["News"],
                        "question": QUESTIONS[column],
                        "label": "yes" if float(value) == 1 else "no",
                        "split": split,
                    }
                )
    return dict(HEADER), records
