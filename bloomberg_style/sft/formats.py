"""Instruction data formats -> one canonical `Example` (turns + optional context).

Three record shapes, declared in the recipe or detected from the first record of a file:

    alpaca        {"instruction", "input" (optional), "output"}
    qa            a question and an answer under configurable keys: question/answer,
                  问题/答案, 问/答, 问题/回答, query/response, prompt/response, ...
    conversation  {"messages": [{"role": "user"|"assistant"|"system", "content": ...}, ...]}
                  or ShareGPT's {"conversations": [{"from": "human"|"gpt", "value": ...}]}

Files: .jsonl / .jsonl.gz (a record per line) or .json / .json.gz (an array of records,
or JSON lines). Every record keeps "file:line" so a malformed one is reported where it is.
"""

from __future__ import annotations

import glob
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .templates import ASSISTANT, SYSTEM, USER, Turn

FORMATS = ("alpaca", "qa", "conversation")
DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")

DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    "alpaca": {"instruction": "instruction", "input": "input", "output": "output"},
    "qa": {"question": "question", "answer": "answer"},
    "conversation": {
        "messages": "messages",
        "role": "role",
        "content": "content",
        "user": "user",
        "assistant": "assistant",
        "system": "system",
    },
}
SHAREGPT_FIELDS = {
    "messages": "conversations",
    "role": "from",
    "content": "value",
    "user": "human",
    "assistant": "gpt",
    "system": "system",
}
# (question key, answer key) pairs that `auto` recognises, in order of preference.
QA_KEY_PAIRS = (
    ("question", "answer"),
    ("问题", "答案"),
    ("问题", "回答"),
    ("问", "答"),
    ("query", "response"),
    ("prompt", "response"),
    ("prompt", "completion"),
    ("input", "output"),
)


class DataError(ValueError):
    """A data file or record that cannot be used; the message starts with file:line."""


@dataclass
class Example:
    turns: list[Turn]
    context: str = ""  # Alpaca's "input": shown with the first user turn
    system: str | None = None  # a record's own system prompt (conversation format)
    source: str = ""  # file:line


@dataclass
class LoadReport:
    files: list[str] = field(default_factory=list)
    records: int = 0
    malformed: int = 0  # skipped (bad_records: skip); with "error" the first one raises
    formats: dict[str, str] = field(default_factory=dict)  # file -> detected/declared format
    problems: list[str] = field(default_factory=list)  # the first few malformed records


# ---- files ----------------------------------------------------------------------------


def expand_paths(patterns: list[str], where: str = "data") -> list[Path]:
    """Files, folders (their data files, sorted) or globs -> existing files, in order, unique."""
    out: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(DATA_SUFFIXES))
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not found:
            raise DataError(f"{where}: {pattern!r} matches no data file ({', '.join(DATA_SUFFIXES)})")
        for p in found:
            if not p.name.endswith(DATA_SUFFIXES):
                raise DataError(f"{where}: {p} is not a {'/'.join(DATA_SUFFIXES)} file")
            if p not in out:
                out.append(p)
    return out


def read_records(path: Path) -> Iterator[tuple[str, Any]]:
    """(file:line, parsed JSON value) for every record of a .json/.jsonl(.gz) file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if text.lstrip().startswith("["):
        yield from _json_array(path, text)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{number}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from exc


def _json_array(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    """Walk a JSON array element by element so each record knows its line."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line = 1 + text.count("\n", 0, pos)

    def skip(pos: int, line: int) -> tuple[int, int]:
        while pos < len(text) and text[pos] in " \t\r\n":
            line += text[pos] == "\n"
            pos += 1
        return pos, line

    pos, line = skip(pos, line)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        yield f"{path}:{line}", value
        line += text.count("\n", pos, end)
        pos, line = skip(end, line)
        if pos < len(text) and text[pos] == ",":
            pos, line = skip(pos + 1, line)
            continue
        if pos < len(text) and text[pos] == "]":
            return
        raise DataError(f"{path}:{line}: expected ',' or ']' between array records")


# ---- detection and parsing -------------------------------------------------------------


def detect_format(record: Any, where: str) -> tuple[str, dict[str, str]]:
    """(format, field names) that fit a record's keys."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
    keys = set(record)
    if {"instruction", "output"} <= keys:
        return "alpaca", dict(DEFAULT_FIELDS["alpaca"])
    if isinstance(record.get("messages"), list):
        return "conversation", dict(DEFAULT_FIELDS["conversation"])
    if isinstance(record.get("conversations"), list):
        return "conversation", dict(SHAREGPT_FIELDS)
    for q, a in QA_KEY_PAIRS:
        if {q, a} <= keys:
            return "qa", {"question": q, "answer": a}
    raise DataError(
        f"{where}: cannot tell the format from keys {sorted(keys)}; declare `format` "
        f"({', '.join(FORMATS)}) and its `fields` in the recipe"
    )


def resolve_fields(fmt: str, fields: dict[str, str], where: str) -> dict[str, str]:
    """Default field names of a format with the recipe's overrides; unknown names are an error."""
    if fmt not in DEFAULT_FIELDS:
        raise DataError(f"{where}: unknown format {fmt!r}; known: auto, {', '.join(FORMATS)}")
    unknown = sorted(set(fields) - set(DEFAULT_FIELDS[fmt]))
    if unknown:
        raise DataError(
            f"{where}: unknown field name(s) {unknown} for format {fmt}; known: {sorted(DEFAULT_FIELDS[fmt])}"
        )
    return {**DEFAULT_FIELDS[fmt], **fields}


def format_of_fields(fields: dict[str, str], where: str) -> str | None:
    """The one format whose field names include all of `fields` (None when fields is empty)."""
    if not fields:
        return None
    fits = [f for f in FORMATS if set(fields) <= set(DEFAULT_FIELDS[f])]
    if len(fits) != 1:
        raise DataError(
            f"{where}: fields {sorted(fields)} do not pick one format (they fit {fits or 'none'}); declare `format`"
        )
    return fits[0]


def parse_record(record: Any, fmt: str, fields: dict[str, str], where: str) -> Example:
    """One record -> Example, or DataError naming file:line and the field at fault."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
    if fmt == "alpaca":
        instruction = _text(record, fields["instruction"], where, fmt)
        output = _text(record, fields["output"], where, fmt)
        context = _text(record, fields["input"], where, fmt, required=False)
        return Example([Turn(USER, instruction), Turn(ASSISTANT, output)], context=context, source=where)
    if fmt == "qa":
        question = _text(record, fields["question"], where, fmt)
        answer = _text(record, fields["answer"], where, fmt)
        return Example([Turn(USER, question), Turn(ASSISTANT, answer)], source=where)
    if fmt == "conversation":
        return _parse_conversation(record, fields, where)
    raise DataError(f"{where}: unknown format {fmt!r}")


def _text(record: dict, key: str, where: str, fmt: str, required: bool = True) -> str:
    value = record.get(key)
    if value is None:
        if required:
            raise DataError(
                f"{where}: {fmt} record lacks field {key!r} (keys present: {sorted(record)}); "
                f"set the stage's data.fields if your data names it differently"
            )
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise DataError(f"{where}: field {key!r} is empty")
    return value


def _parse_conversation(record: dict, f: dict[str, str], where: str) -> Example:
    messages = record.get(f["messages"])
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: field {f['messages']!r} must be a non-empty list of turns")
    roles = {f["user"]: USER, f["assistant"]: ASSISTANT, f["system"]: SYSTEM}
    system = None
    turns: list[Turn] = []
    for i, message in enumerate(messages):
        at = f"{where}: {f['messages']}[{i}]"
        if not isinstance(message, dict):
            raise DataError(f"{at} must be an object with {f['role']!r} and {f['content']!r}")
        role = roles.get(message.get(f["role"]))
        if role is None:
            raise DataError(
                f"{at}: field {f['role']!r} is {message.get(f['role'])!r}; expected one of {sorted(roles)}"
            )
        content = message.get(f["content"])
        if not isinstance(content, str) or (role != SYSTEM and not content.strip()):
            raise DataError(f"{at}: field {f['content']!r} must be a non-empty string")
        if role == SYSTEM:
            if i != 0:
                raise DataError(f"{at}: a system turn may only come first")
            system = content
            continue
        expected = USER if len(turns) % 2 == 0 else ASSISTANT
        if role != expected:
            raise DataError(f"{at}: expected a {expected} turn (turns alternate user/assistant), got {role}")
        turns.append(Turn(role, content))
    if not turns or turns[-1].role != ASSISTANT:
        raise DataError(f"{where}: a conversation must end with an assistant turn")
    return Example(turns, system=system, source=where)


def load_examples(
    patterns: list[str],
    fmt: str = "auto",
    fields: dict[str, str] | None = None,
    bad_records: str = "error",
    where: str = "data",
) -> tuple[list[Example], LoadReport]:
    """Read every record of the files; `bad_records` "error" raises at the first malformed
    one, "skip" drops it and counts it (the first few are listed in the report)."""
    if bad_records not in ("error", "skip"):
        raise DataError(f"{where}.bad_records must be 'error' or 'skip', got {bad_records!r}")
    report = LoadReport()
    examples: list[Example] = []
    for path in expand_paths(patterns, where):
        report.files.append(str(path))
        file_fmt, file_fields = None, None
        declared = fmt if fmt != "auto" else format_of_fields(fields or {}, where)
        if declared:
            file_fmt, file_fields = declared, resolve_fields(declared, fields or {}, where)
        for source, record in read_records(path):
            report.records += 1
            try:
                if file_fmt is None:
                    file_fmt, detected = detect_format(record, source)
                    file_fields = {**detected, **(fields or {})}
                examples.append(parse_record(record, file_fmt, file_fields, source))
            except DataError as exc:
                if bad_records == "error":
                    raise
                report.malformed += 1
                if len(report.problems) < 10:
                    report.problems.append(str(exc))
        if file_fmt is not None:
            report.formats[str(path)] = file_fmt
    if not examples:
        raise DataError(f"{where}: no usable records in {report.files}")
    return examples, report
