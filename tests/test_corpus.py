"""Corpus readers: every input format, deterministic order, and errors that name file and line."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from bloomberg_style import corpus
from bloomberg_style.corpus import CorpusError, CorpusStats, iter_documents, iter_texts, resolve_inputs


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_every_format_reads_its_documents(tmp_path):
    (tmp_path / "a.txt").write_text("A whole file is one document.\nSecond line é.", encoding="utf-8")
    write_jsonl(tmp_path / "b.jsonl", [{"text": "jsonl one", "id": 1}, {"text": "jsonl two"}])
    with gzip.open(tmp_path / "c.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"text": "gz one"}) + "\n\n" + json.dumps({"text": "gz two"}) + "\n")
    (tmp_path / "d.json").write_text(json.dumps([{"text": "json list"}]), encoding="utf-8")
    (tmp_path / "e.json").write_text(
        json.dumps({"meta": 1, "rows": [{"text": "json object"}]}), encoding="utf-8"
    )
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"text": ["pq one", "pq two", "pq three"], "n": [1, 2, 3]})
    pq.write_table(table, tmp_path / "f.parquet", row_group_size=2)

    docs = list(iter_documents([tmp_path]))
    assert [d.text for d in docs] == [
        "A whole file is one document.\nSecond line é.",
        "jsonl one", "jsonl two", "gz one", "gz two", "json list", "json object",
        "pq one", "pq two", "pq three",
    ]  # fmt: skip
    assert [(d.source.name, d.record) for d in docs][1:5] == [
        ("b.jsonl", 1), ("b.jsonl", 2), ("c.jsonl.gz", 1), ("c.jsonl.gz", 3)
    ]  # fmt: skip


def test_custom_text_field(tmp_path):
    write_jsonl(tmp_path / "x.jsonl", [{"body": "hello"}])
    assert list(iter_texts([tmp_path / "x.jsonl"], text_field="body")) == ["hello"]


def test_folders_recurse_sorted_and_skip_hidden_and_unknown(tmp_path):
    for rel in ["b/2.txt", "b/10.txt", "a/z.txt", ".hidden/h.txt", "a/notes.md", "a/.secret.txt"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel, encoding="utf-8")
    files = resolve_inputs([tmp_path])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a/z.txt", "b/10.txt", "b/2.txt"]
    # the same file named twice (folder + glob) is read once
    assert resolve_inputs([tmp_path / "a", str(tmp_path / "a" / "*.txt")]) == [tmp_path / "a/z.txt"]


def test_glob_inputs(tmp_path):
    for name in ["p1.txt", "p2.txt", "q.txt"]:
        (tmp_path / name).write_text(name, encoding="utf-8")
    assert list(iter_texts([str(tmp_path / "p*.txt")])) == ["p1.txt", "p2.txt"]
    assert list(iter_texts([str(tmp_path / "**" / "q.txt")])) == ["q.txt"]


def test_empty_documents_are_skipped_and_counted(tmp_path):
    write_jsonl(tmp_path / "x.jsonl", [{"text": "keep"}, {"text": ""}, {"text": "  \n"}, {"text": "also"}])
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    stats = CorpusStats()
    texts = [d.text for d in iter_documents([tmp_path], stats=stats)]
    assert texts == ["keep", "also"]
    assert (stats.documents, stats.empty_skipped, stats.bytes, len(stats.files)) == (2, 3, 8, 2)


def error_of(paths, **kw) -> str:
    with pytest.raises(CorpusError) as info:
        list(iter_documents(paths, **kw))
    return str(info.value)


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "ok"}\n{"text": broken}\n', encoding="utf-8")
    assert re.match(rf"{re.escape(str(path))}:3: invalid JSON", error_of([path]))


def test_missing_and_non_string_field_name_line(tmp_path):
    path = write_jsonl(tmp_path / "f.jsonl", [{"text": "ok"}, {"body": "x", "id": 2}])
    message = error_of([path])
    assert message.startswith(f"{path}:2: missing text field 'text'") and "body, id" in message
    path = write_jsonl(tmp_path / "g.jsonl", [{"text": 5}])
    assert error_of([path]) == f"{path}:1: field 'text' is int, expected a string"
    path = write_jsonl(tmp_path / "h.jsonl", [["not", "an", "object"]])
    assert error_of([path]) == f"{path}:1: expected a JSON object, found list"
    (tmp_path / "i.json").write_text(json.dumps([{"text": "a"}, {"txt": "b"}]), encoding="utf-8")
    assert error_of([tmp_path / "i.json"]).startswith(f"{tmp_path / 'i.json'}:record 1: missing text field")


def test_non_utf8_names_line_and_byte_offset(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    assert error_of([path]) == f"{path}:2: not valid UTF-8 (byte 0xe9 at byte offset 30)"
    txt = tmp_path / "latin.txt"
    txt.write_bytes("line one é\nline two ".encode() + b"\xff" + b" end\n")
    assert error_of([txt]) == f"{txt}:2: not valid UTF-8 (byte 0xff at byte offset 21)"


def test_non_utf8_offset_across_read_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "_READ_CHUNK", 4)
    txt = tmp_path / "t.txt"
    # "é" (2 bytes) straddles chunk boundaries; the bad byte sits at offset 13 on line 3
    txt.write_bytes("abé\ncdé\nxy".encode() + b"z\xc3(" + b"tail")
    assert error_of([txt]) == f"{txt}:3: not valid UTF-8 (byte 0xc3 at byte offset 13)"
    good = tmp_path / "good.txt"
    good.write_text("ééé\nüü€\n" * 3, encoding="utf-8")
    assert list(iter_texts([good])) == ["ééé\nüü€\n" * 3]


def test_path_errors(tmp_path):
    assert error_of([tmp_path / "nope.jsonl"]) == f"{tmp_path / 'nope.jsonl'}: no such file or folder"
    assert error_of([str(tmp_path / "*.jsonl")]) == f"{tmp_path / '*.jsonl'}: pattern matches no files"
    (tmp_path / "data.csv").write_text("text\nx\n", encoding="utf-8")
    assert error_of([tmp_path / "data.csv"]).startswith(f"{tmp_path / 'data.csv'}: unknown extension")
    (tmp_path / "sub").mkdir()
    assert error_of([tmp_path / "sub"]).startswith(f"{tmp_path / 'sub'}: folder contains no corpus files")
    with pytest.raises(CorpusError, match="no corpus inputs"):
        resolve_inputs([])


def test_missing_path_fails_before_reading(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [{"text": "x"}])
    stream = iter_documents([good, tmp_path / "missing.txt"])
    with pytest.raises(CorpusError, match="missing.txt: no such file"):
        next(stream)


def test_empty_corpus(tmp_path):
    write_jsonl(tmp_path / "blank.jsonl", [{"text": ""}, {"text": " "}])
    message = error_of([tmp_path])
    assert message.startswith("empty corpus: 1 file(s)") and "2 empty skipped" in message


def test_unreadable_files(tmp_path):
    bad_gz = tmp_path / "broken.jsonl.gz"
    bad_gz.write_bytes(b"this is not gzip data")
    assert error_of([bad_gz]).startswith(f"{bad_gz}: unreadable file")
    bad_pq = tmp_path / "broken.parquet"
    bad_pq.write_bytes(b"PAR1 nonsense")
    assert error_of([bad_pq]).startswith(f"{bad_pq}: unreadable parquet file")
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('[\n{"text": "a"},\n{"text": }\n]', encoding="utf-8")
    assert error_of([bad_json]).startswith(f"{bad_json}:3: invalid JSON")
    two_lists = tmp_path / "two.json"
    two_lists.write_text(json.dumps({"a": [], "b": []}), encoding="utf-8")
    assert "exactly one list" in error_of([two_lists])


def test_parquet_column_errors(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "a.parquet")
    assert (
        error_of([tmp_path / "a.parquet"])
        == f"{tmp_path / 'a.parquet'}: missing text column 'text' (columns: body)"
    )
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "b.parquet")
    assert "has type int64, expected string" in error_of([tmp_path / "b.parquet"])
    pq.write_table(pa.table({"text": ["x", None]}), tmp_path / "c.parquet")
    assert error_of([tmp_path / "c.parquet"]) == f"{tmp_path / 'c.parquet'}:row 1: column 'text' is null"


def test_lone_surrogate_names_file_and_line(tmp_path):
    from bloomberg_style.corpus import CorpusError, iter_texts

    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "broken \\ud83d here"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad.jsonl:2: lone surrogate U\+D83D"):
        list(iter_texts([path]))
