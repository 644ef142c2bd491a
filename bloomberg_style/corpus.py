"""Corpus readers: turn files, folders and globs into a stream of documents.

Every stage that reads raw text (tokenizer training, token shards) goes
through `iter_documents`, so all of them accept the same inputs and fail with
the same messages. Supported formats:

    .txt                 the whole file is one document
    .jsonl, .jsonl.gz    one JSON object per line, text in `text_field`
    .json                a list of objects, or an object holding one such list
    .parquet             a string column `text_field`, read one batch at a time

Folders are walked recursively in sorted order (hidden files and files with
other extensions are skipped), globs are expanded and sorted, so the same
inputs always give the same document order. Documents that are empty or only
whitespace are skipped and counted in `CorpusStats`. Every error is a
`CorpusError` that starts with `file:line:` (or `file:record N:`).
"""

from __future__ import annotations

import codecs
import glob
import gzip
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = (".txt", ".jsonl", ".jsonl.gz", ".json", ".parquet")
_GLOB_CHARS = set("*?[")
_READ_CHUNK = 1 << 20


class CorpusError(ValueError):
    """Bad corpus input; the message names the file, the line or record, and the problem."""


@dataclass(frozen=True)
class Document:
    """One document and where it came from (`record`: 1-based line, list index or row)."""

    source: Path
    record: int
    text: str


@dataclass
class CorpusStats:
    """Counts filled in while a corpus is read (pass one to `iter_documents`)."""

    files: list[Path] = field(default_factory=list)
    documents: int = 0
    empty_skipped: int = 0
    bytes: int = 0  # UTF-8 bytes of the documents yielded


def corpus_format(path: Path) -> str | None:
    """The supported suffix `path` ends with, or None."""
    name = path.name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):  # ".jsonl.gz" before ".json"
        if name.endswith(suffix):
            return suffix
    return None


def resolve_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Expand files, folders and globs into a sorted, de-duplicated list of corpus files.

    Raises CorpusError for a missing path, a glob without matches, a named file
    with an unsupported extension, or a folder with no corpus files.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise CorpusError("no corpus inputs given (expected files, folders or globs)")
    files: list[Path] = []
    for raw in paths:
        text = str(raw)
        path = Path(text).expanduser()
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and corpus_format(p) is not None
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise CorpusError(f"{path}: folder contains no corpus files ({', '.join(SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(_checked_suffix(path))
        elif _GLOB_CHARS & set(text):
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
            matched_files = [m for m in matches if m.is_file()]
            if not matched_files:
                raise CorpusError(f"{text}: pattern matches no files")
            files.extend(_checked_suffix(m) for m in matched_files)
        else:
            raise CorpusError(f"{path}: no such file or folder")
    unique: dict[Path, None] = {}
    for f in files:
        unique.setdefault(f, None)
    return list(unique)


def _checked_suffix(path: Path) -> Path:
    if corpus_format(path) is None:
        raise CorpusError(f"{path}: unknown extension (supported: {', '.join(SUFFIXES)})")
    return path


def iter_documents(
    paths: Sequence[str | Path],
    text_field: str = "text",
    stats: CorpusStats | None = None,
) -> Iterator[Document]:
    """Yield the non-empty documents of all inputs, in a deterministic order.

    Inputs are resolved before the first document is read, so a missing path
    fails at once. Raises CorpusError at the end if no document had text.
    """
    files = resolve_inputs(paths)
    stats = stats if stats is not None else CorpusStats()
    stats.files = list(files)
    for path in files:
        for doc in _read_file(path, text_field):
            if not doc.text.strip():
                stats.empty_skipped += 1
                continue
            try:
                size = len(doc.text.encode("utf-8"))
            except UnicodeEncodeError as exc:  # a JSON "\udXXX" escape: not a character
                bad = doc.text[exc.start]
                raise CorpusError(
                    f"{doc.source}:{doc.record}: lone surrogate U+{ord(bad):04X} at character {exc.start}: "
                    "not valid Unicode text"
                ) from None
            stats.documents += 1
            stats.bytes += size
            yield doc
    if stats.documents == 0:
        names = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        raise CorpusError(
            f"empty corpus: {len(files)} file(s) ({names}) hold no non-empty documents "
            f"({stats.empty_skipped} empty skipped)"
        )


def iter_texts(paths: Sequence[str | Path], text_field: str = "text") -> Iterator[str]:
    """Yield the text of every non-empty document (see `iter_documents`)."""
    for doc in iter_documents(paths, text_field):
        yield doc.text


def _read_file(path: Path, text_field: str) -> Iterator[Document]:
    fmt = corpus_format(path)
    try:
        if fmt == ".txt":
            yield Document(path, 1, _read_txt(path))
        elif fmt == ".jsonl":
            with open(path, "rb") as stream:
                yield from _read_jsonl(path, stream, text_field)
        elif fmt == ".jsonl.gz":
            with gzip.open(path, "rb") as stream:
                yield from _read_jsonl(path, stream, text_field)
        elif fmt == ".json":
            yield from _read_json(path, text_field)
        elif fmt == ".parquet":
            yield from _read_parquet(path, text_field)
        else:
            raise CorpusError(f"{path}: unknown extension (supported: {', '.join(SUFFIXES)})")
    except CorpusError:
        raise
    except (OSError, EOFError, zlib.error) as err:
        raise CorpusError(f"{path}: unreadable file: {err}") from err


def _read_txt(path: Path) -> str:
    """Decode a text file in chunks so a bad byte is reported with its offset and line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    parts: list[str] = []
    offset = 0
    lines = 1
    with open(path, "rb") as stream:
        while chunk := stream.read(_READ_CHUNK):
            pending = decoder.getstate()[0]  # bytes of a character split across chunks
            try:
                parts.append(decoder.decode(chunk))
            except UnicodeDecodeError as err:
                seen = pending + chunk  # err.start counts from here
                bad = offset - len(pending) + err.start
                line = lines + seen[: err.start].count(b"\n")
                raise CorpusError(
                    f"{path}:{line}: not valid UTF-8 (byte {seen[err.start]:#04x} at byte offset {bad})"
                ) from err
            offset += len(chunk)
            lines += chunk.count(b"\n")
        try:
            parts.append(decoder.decode(b"", final=True))
        except UnicodeDecodeError as err:
            raise CorpusError(
                f"{path}:{lines}: not valid UTF-8 (truncated character at end of file)"
            ) from err
    return "".join(parts)


def _read_jsonl(path: Path, stream, text_field: str) -> Iterator[Document]:
    offset = 0
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorpusError(
                f"{path}:{number}: not valid UTF-8 (byte {raw[err.start]:#04x} at byte offset "
                f"{offset + err.start})"
            ) from err
        offset += len(raw)
        if not line.strip():
            continue  # blank lines (e.g. a trailing newline) are not records
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(f"{path}:{number}: invalid JSON: {err.msg} (column {err.colno})") from err
        yield Document(path, number, _text_of(record, text_field, f"{path}:{number}"))


def _read_json(path: Path, text_field: str) -> Iterator[Document]:
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not valid UTF-8 (byte offset {err.start})") from err
    except json.JSONDecodeError as err:
        raise CorpusError(f"{path}:{err.lineno}: invalid JSON: {err.msg} (column {err.colno})") from err
    if isinstance(data, dict):
        lists = [key for key, value in data.items() if isinstance(value, list)]
        if len(lists) != 1:
            raise CorpusError(
                f"{path}: expected a list of objects or an object holding exactly one list, "
                f"found an object with list keys {lists}"
            )
        data = data[lists[0]]
    if not isinstance(data, list):
        raise CorpusError(f"{path}: expected a list of objects, found {type(data).__name__}")
    for index, record in enumerate(data):
        yield Document(path, index, _text_of(record, text_field, f"{path}:record {index}"))


def _text_of(record: object, text_field: str, where: str) -> str:
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object, found {type(record).__name__}")
    if text_field not in record:
        keys = ", ".join(sorted(record)[:10]) or "none"
        raise CorpusError(f"{where}: missing text field {text_field!r} (fields: {keys})")
    text = record[text_field]
    if not isinstance(text, str):
        raise CorpusError(f"{where}: field {text_field!r} is {type(text).__name__}, expected a string")
    return text


def _read_parquet(path: Path, text_field: str) -> Iterator[Document]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - pyarrow is an install requirement
        raise CorpusError(f"{path}: reading .parquet needs pyarrow (pip install pyarrow)") from err
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise CorpusError(f"{path}: unreadable parquet file: {err}") from err
    schema = parquet.schema_arrow
    if text_field not in schema.names:
        raise CorpusError(f"{path}: missing text column {text_field!r} (columns: {', '.join(schema.names)})")
    column_type = schema.field(text_field).type
    if not (pa.types.is_string(column_type) or pa.types.is_large_string(column_type)):
        raise CorpusError(f"{path}: column {text_field!r} has type {column_type}, expected string")
    row = 0
    for batch in parquet.iter_batches(columns=[text_field], batch_size=1024):
        for text in batch.column(0).to_pylist():
            if text is None:
                raise CorpusError(f"{path}:row {row}: column {text_field!r} is null")
            yield Document(path, row, text)
            row += 1
