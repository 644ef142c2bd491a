"""Converters: a public data set in its own published format -> one of our task files.

    bloomberg-style evaluate --convert fpb Sentences_50Agree.txt --output fpb.jsonl
    bloomberg-style evaluate --convert ner test=ner_test.txt train=ner_train.txt --output ner.jsonl

One module per data set (fpb, fiqa_sa, headline, ner, convfinqa); each has
`convert(sources: list[Source]) -> (header, records)` and the paper's prompt and shot count
(BloombergGPT, Table 8: FPB 5, FiQA SA 5, Headline 5, NER 20, ConvFinQA 0).

A source is PATH or SPLIT=PATH (SPLIT is train or test). Rows of a plain PATH are assigned
to test with probability --test-fraction by a hash of (seed, file name, line), so a seed
reproduces the split and adding a file does not move the rows of another. Every bad or
unexpected row is a ConvertError naming the file and line; nothing is guessed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONVERTERS = {
    "fpb": "fpb",
    "fiqa-sa": "fiqa_sa",
    "headline": "headline",
    "ner": "ner",
    "convfinqa": "convfinqa",
}
SPLITS = ("train", "test")


def note(message: str) -> None:
    """A row kept but worth a look (printed to stderr, naming the file and row)."""
    print(f"convert: note: {message}", file=sys.stderr)


class ConvertError(ValueError):
    """A source file that does not have the published format; names the file and line."""


@dataclass
class Source:
    path: Path
    split: str | None = None  # None: assigned per row by split_of()
    test_fraction: float = 0.2
    seed: int = 1234

    def split_of(self, line: int) -> str:
        """The row's split: the source's own, else a seeded hash of (seed, file name, line)."""
        if self.split is not None:
            return self.split
        digest = hashlib.sha256(f"{self.seed}:{self.path.name}:{line}".encode()).digest()
        return "test" if int.from_bytes(digest[:8], "big") / 2**64 < self.test_fraction else "train"


def parse_source(text: str, test_fraction: float = 0.2, seed: int = 1234) -> Source:
    """ "PATH" or "train=PATH" / "test=PATH" -> a Source whose file exists."""
    split, sep, rest = text.partition("=")
    if sep and split in SPLITS:
        path, chosen = Path(rest), split
    else:
        path, chosen = Path(text), None
    if not path.is_file():
        raise ConvertError(f"{path}: no such file")
    return Source(path, chosen, test_fraction, seed)


def convert(name: str, sources: list[Source]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(task header, example records) of data set `name` from its files."""
    if name not in CONVERTERS:
        raise ConvertError(f"unknown data set {name!r}; known: {sorted(CONVERTERS)}")
    if not sources:
        raise ConvertError(f"--convert {name}: give at least one source file")
    module = importlib.import_module(f"bloomberg_style.evaluation.converters.{CONVERTERS[name]}")
    header, records = module.convert(sources)
    if not any(r.get("split", "test") == "test" for r in records):
        raise ConvertError(
            f"--convert {name}: no test examples (check the split= prefixes and --test-fraction)"
        )
    return header, records


def write_task(
    path: str | Path, header: dict[str, Any], records: list[dict[str, Any]], force: bool = False
) -> Path:
    """Write the task file atomically; an existing file is replaced only with force."""
    path = Path(path)
    if path.exists() and not force:
        raise ConvertError(f"{path} exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    lines = [json.dumps(header, ensure_ascii=False)] + [json.dumps(r, ensure_ascii=False) for r in records]
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_lines(source: Source, encoding: str = "utf-8") -> list[tuple[int, str]]:
    """(1-based line number, line without its newline) of a text file; bad bytes name the line."""
    raw = source.path.read_bytes()
    out = []
    for number, chunk in enumerate(raw.split(b"\n"), 1):
        try:
            line = chunk.decode(encoding)
        except UnicodeDecodeError as err:
            raise ConvertError(
                f"{source.path}:{number}: not {encoding} ({err.reason} at byte {err.start})"
            ) from None
        out.append((number, line.rstrip("\r")))
    if out and out[-1][1] == "":
        out.pop()
    return out


def read_json(source: Source) -> Any:
    try:
        return json.loads(source.path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConvertError(f"{source.path}: not UTF-8 ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise ConvertError(f"{source.path}:{err.lineno}: not valid JSON: {err.msg}") from None
