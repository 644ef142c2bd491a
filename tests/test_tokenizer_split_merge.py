"""Split-and-merge training for real (2 worker processes), the vocabulary sweep, and bad corpus input."""

from __future__ import annotations

import gzip
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bloomberg_style.corpus import CorpusError
from tests.conftest import TOKENIZER_SAMPLES as SAMPLES
from tests.conftest import synthetic_lines
from tokenizer import (
    BYTE_SYMBOLS,
    EOD_TOKEN,
    ModelMerger,
    NumericUnigramTokenizer,
    UnigramModel,
    merge_hierarchical,
    merge_unigram_models,
    parse_sweep,
    prune_unigram_model,
    train_split_merge,
    vocab_sweep,
)
from tokenizer.split_merge import (
    ChunkWriter,
    HierarchicalMerger,
    Source,
    plan_chunks,
    split_long_document,
)
from tokenizer.sweep import sweep_sizes

REPO = Path(__file__).resolve().parents[1]
VOCAB = 700


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def nbytes(texts: list[str]) -> int:
    return sum(len(t.encode("utf-8")) for t in texts)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """Two sources: a folder of JSONL documents (financial-like) and a folder of .txt files."""
    root = tmp_path_factory.mktemp("sm_corpus")
    fin = synthetic_lines(600, seed=1)
    fin_docs = ["".join(fin[i : i + 6]) for i in range(0, len(fin), 6)]  # 100 documents
    write_jsonl(root / "fin" / "a.jsonl", fin_docs[:50])
    write_jsonl(root / "fin" / "b.jsonl", fin_docs[50:])
    gen = synthetic_lines(300, seed=2)
    gen_docs = ["".join(gen[i : i + 10]) for i in range(0, len(gen), 10)]  # 30 documents
    for k, doc in enumerate(gen_docs):
        (root / "gen").mkdir(exist_ok=True)
        (root / "gen" / f"doc{k:02d}.txt").write_text(doc, encoding="utf-8")
    return {"root": root, "sources": [str(root / "fin"), str(root / "gen")], "docs": [fin_docs, gen_docs]}


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory) -> dict:
    """One real split-and-merge run: 4 chunks, 2 spawned workers, a sweep, work files kept."""
    out = tmp_path_factory.mktemp("sm_run") / "tok"
    stats = train_split_merge(
        corpus["sources"],
        out,
        vocab_size=VOCAB,
        chunks=4,
        chunk_vocab_size=600,
        workers=2,
        sweep=(300, 3000, 5),
        heldout_every=10,
        keep_work=True,
        show_progress=False,
    )
    return {"out": out, "stats": stats}


# ---------------------------------------------------------------- the run


def test_run_chunks_cover_the_training_text(corpus, run) -> None:
    stats = run["stats"]
    held = stats["sweep"]["heldout_bytes"]
    assert held > 0 and stats["sweep"]["heldout_documents"] == (100 + 30) // 10
    assert stats["bytes"] + held == nbytes(corpus["docs"][0]) + nbytes(corpus["docs"][1])
    assert len(stats["chunks"]) == 4 and sum(stats["bytes_per_chunk"]) == stats["bytes"]
    per_source = [sum(1 for c in stats["chunks"] if c["source"] == s) for s in corpus["sources"]]
    assert per_source == [s["chunks"] for s in stats["sources"]] and sum(per_source) == 4
    assert per_source[0] > per_source[1]  # chunks are shared out by bytes: fin is the larger source
    assert stats["documents"] == 130 - stats["sweep"]["heldout_documents"]
    assert stats["peak_rss_mb"]["main"] > 0 and stats["peak_rss_mb"]["largest_worker"] > 0
    assert all(c["pieces"] > 256 and c["train_seconds"] > 0 for c in stats["chunks"])
    saved = json.loads((run["out"] / "training_stats.json").read_text())
    assert saved["tokens_before_pruning"] == stats["tokens_before_pruning"] > VOCAB
    assert saved["wall_time_s"] > 0


def test_run_merge_equals_flat_and_hierarchical_merge_of_its_chunks(run) -> None:
    work = run["out"] / "split_merge_work"
    chunks = {p.name: UnigramModel.load(p) for p in sorted(work.glob("chunk-*.model.json"))}
    assert len(chunks) == 4
    groups = [[m for n, m in chunks.items() if n.startswith(f"chunk-{s:03d}-")] for s in (0, 1)]
    merged = UnigramModel.load(run["out"] / "merged_model.json")
    flat = merge_unigram_models(list(chunks.values()))
    assert merged.bytes_seen == flat.bytes_seen == run["stats"]["bytes"]
    assert merged.probabilities() == pytest.approx(flat.probabilities(), rel=1e-9, abs=1e-15)
    assert merge_hierarchical(groups).probabilities() == pytest.approx(flat.probabilities(), rel=1e-9)
    for s, group in enumerate(groups):  # each source model is the merge of its own chunks
        source = UnigramModel.load(work / f"source-{s:03d}.json")
        assert source.probabilities() == pytest.approx(merge_unigram_models(group).probabilities())


def test_run_tokenizer_layout_and_round_trip(run) -> None:
    tok = NumericUnigramTokenizer.load(run["out"])
    assert tok.vocab_size == VOCAB == run["stats"]["vocab_size"]
    assert tok.token_to_id(EOD_TOKEN) == tok.eod_id == 0
    assert [tok.token_to_id(s) for s in BYTE_SYMBOLS] == list(range(1, 257))
    for text in [*SAMPLES, "Acme Corp rose 12.5% to $1,234.", "\x00😀日本\udc80"]:
        assert tok.decode(tok.encode(text)) == text
    pruned = prune_unigram_model(UnigramModel.load(run["out"] / "merged_model.json"), VOCAB)
    rebuilt = NumericUnigramTokenizer.from_model(pruned)  # the saved tokenizer is the pruned merge
    assert rebuilt.encode_batch(SAMPLES) == tok.encode_batch(SAMPLES)


def test_run_exports_give_identical_ids(run) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tok = NumericUnigramTokenizer.load(run["out"])
    raw = Tokenizer.from_file(str(run["out"] / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(run["out"])
    for text in SAMPLES:
        ours = tok.encode(text)
        assert raw.encode(text, add_special_tokens=False).ids == ours
        assert auto(text)["input_ids"] == ours


def test_run_sweep(run) -> None:
    sweep = run["stats"]["sweep"]
    rows = sweep["rows"]
    sizes = [r["vocab_size"] for r in rows]
    assert sizes == sorted(set(sizes)) and sizes[0] == 300
    for r in rows:
        assert r["bits"] == pytest.approx(r["tokens"] * math.log2(r["vocab_size"]))
    assert sweep["optimum_vocab_size"] == min(rows, key=lambda r: r["bits"])["vocab_size"]
    assert rows[0]["tokens"] > rows[-1]["tokens"]  # more pieces, fewer tokens
    assert (run["out"] / "vocab_sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run["out"] / "vocab_sweep.json").read_text()) == sweep


# ---------------------------------------------------------------- merge by hand


def test_hierarchical_merge_by_hand() -> None:
    """Chunks (a1, a2) of source A, chunk b1 of source B; p(t) = sum bytes_i p_i(t) / sum bytes_i."""
    a1 = UnigramModel([("x", math.log(0.5)), ("y", math.log(0.5))], bytes_seen=100)
    a2 = UnigramModel([("x", math.log(1.0))], bytes_seen=300)
    b1 = UnigramModel([("y", math.log(0.2)), ("z", math.log(0.8))], bytes_seen=600)
    source_a = merge_unigram_models([a1, a2])
    assert source_a.probabilities() == pytest.approx({"x": (50 + 300) / 400, "y": 50 / 400})
    expected = {"x": (50 + 300) / 1000, "y": (50 + 120) / 1000, "z": 480 / 1000}
    tree = merge_hierarchical([[a1, a2], [b1]])
    assert tree.bytes_seen == 1000 and tree.probabilities() == pytest.approx(expected)
    merger = ModelMerger()
    for m in (b1, a1, a2):  # incremental, any order
        merger.add(m)
    assert merger.result().probabilities() == pytest.approx(expected)


def test_hierarchical_merger_ignores_completion_order(tmp_path: Path) -> None:
    """Workers finish in any order; the merged model must be bit-identical anyway."""
    rng = random.Random(3)
    names = ["a", "b", "c", "ab", "bc", "abc", "ca"]
    layout = [3, 2, 4]  # chunks per source
    models = {
        (s, j): UnigramModel(
            [(n, math.log(rng.random())) for n in rng.sample(names, rng.randint(2, 7))], rng.randint(1, 99)
        )
        for s, n_chunks in enumerate(layout)
        for j in range(n_chunks)
    }
    sources = [Source(name=f"s{i}", files=[]) for i in range(len(layout))]
    results = []
    for order in range(3):
        work = tmp_path / f"w{order}"
        work.mkdir()
        merger = HierarchicalMerger(sources, work)
        keys = list(models)
        for k in keys:
            merger.chunk_submitted(k[0])
        for s in range(len(layout)):
            merger.source_streamed(s)
        if order:
            rng.shuffle(keys)
        for s, j in keys:
            path = work / f"{s}-{j}.json"
            models[(s, j)].save(path)
            merger.chunk_done(s, j, str(path))
        assert merger.next_source == len(layout)
        results.append(merger.corpus.result())
    assert results[0] == results[1] == results[2]
    flat = merge_unigram_models(models.values())
    assert results[0].probabilities() == pytest.approx(flat.probabilities())


# ---------------------------------------------------------------- chunk planning


def test_plan_chunks_shares_out_by_bytes() -> None:
    sources = [Source("a", [], bytes=700), Source("b", [], bytes=200), Source("c", [], bytes=100)]
    plan_chunks(sources, chunks=10, chunk_bytes=None)
    assert [s.chunks for s in sources] == [7, 2, 1]
    plan_chunks(sources, chunks=2, chunk_bytes=None)  # every source keeps at least one chunk
    assert [s.chunks for s in sources] == [1, 1, 1]
    uneven = [Source("sec", [], bytes=322), Source("bank", [], bytes=56), Source("wiki", [], bytes=117)]
    plan_chunks(uneven, chunks=8, chunk_bytes=None)  # quotas 5.2, 0.9, 1.9: bank already has 1 > 0.9
    assert [s.chunks for s in uneven] == [5, 1, 2]
    plan_chunks(sources, chunks=None, chunk_bytes=250)
    assert [s.chunks for s in sources] == [3, 1, 1]
    with pytest.raises(ValueError, match="not both"):
        plan_chunks(sources, chunks=2, chunk_bytes=10)


def test_chunk_writer_makes_equal_chunks(tmp_path: Path) -> None:
    writer = ChunkWriter(tmp_path, source=0, n_chunks=4, source_bytes=1000)
    closed = [c for _ in range(100) if (c := writer.add("x" * 9, 10)) is not None]
    if (last := writer.close()) is not None:
        closed.append(last)
    assert [j for j, _ in closed] == [0, 1, 2, 3]
    assert [len(Path(p).read_text().splitlines()) for _, p in closed] == [25, 25, 25, 25]


def test_split_long_document_keeps_text() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    parts = split_long_document(text, len(text), 500)
    assert "".join(p for p, _ in parts) == text
    assert all(n <= 500 and n == len(p.encode()) for p, n in parts)
    assert split_long_document("short", 5, 500) == [("short", 5)]


def test_parse_sweep() -> None:
    assert parse_sweep("25000:550000") == (25000, 550000, 12)
    assert parse_sweep("1000:4000:3") == (1000, 4000, 3)
    assert sweep_sizes(1000, 4000, 3) == [1000, 2000, 4000]
    for bad in ("100:2000", "5000:1000", "1000", "a:b", "1000:2000:1"):
        with pytest.raises(ValueError, match="sweep"):
            parse_sweep(bad)


def test_vocab_sweep_caps_at_the_model_size() -> None:
    pieces = [(s, -6.0) for s in BYTE_SYMBOLS] + [("ab", -1.0), ("abab", -2.0)]
    model = UnigramModel(pieces, bytes_seen=10)
    rows = vocab_sweep(model, ["abab ab", "x"], (257, 400, 3))
    assert [r["vocab_size"] for r in rows] == [257, 259]
    assert rows[-1]["capped"] and rows[0]["tokens"] == 8 and rows[-1]["tokens"] == 4


# ---------------------------------------------------------------- bad input


def bad_inputs(root: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (inputs, a regex the error must match: file and line or record)."""
    good = write_jsonl(root / "good.jsonl", synthetic_lines(20))
    cases = {}
    cases["missing"] = ([str(root / "nowhere.jsonl")], r"nowhere\.jsonl: no such file")
    p = root / "badjson.jsonl"
    p.write_text('{"text": "fine"}\n{"text": broken\n', encoding="utf-8")
    cases["bad json line"] = ([str(p)], r"badjson\.jsonl:2: invalid JSON")
    p = write_jsonl(root / "nofield.jsonl", ["a"])
    p.write_text(p.read_text() + '{"body": "b"}\n', encoding="utf-8")
    cases["missing field"] = ([str(p)], r"nofield\.jsonl:2: missing text field 'text'")
    p = root / "latin1.txt"
    p.write_bytes("first line\nprice 5 \u20ac\n".encode() + b"caf\xe9\n")
    cases["non-utf8 txt"] = ([str(p)], r"latin1\.txt:3: not valid UTF-8 \(byte 0xe9")
    p = root / "latin1.jsonl"
    p.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    cases["non-utf8 jsonl"] = ([str(p)], r"latin1\.jsonl:2: not valid UTF-8")
    p = root / "empty.jsonl"
    p.write_text('{"text": ""}\n{"text": "   "}\n', encoding="utf-8")
    cases["empty corpus"] = ([str(p)], r"empty corpus: .*empty\.jsonl.*2 empty skipped")
    cases["empty source beside a good one"] = ([str(good), str(p)], r"empty corpus: .*empty\.jsonl")
    p = root / "broken.jsonl.gz"
    p.write_bytes(b"this is not gzip data")
    cases["unreadable gzip"] = ([str(p)], r"broken\.jsonl\.gz: unreadable file")
    p = root / "truncated.jsonl.gz"
    p.write_bytes(gzip.compress(b'{"text": "a long enough line of text"}\n' * 50)[:-30])
    cases["truncated gzip"] = ([str(p)], r"truncated\.jsonl\.gz: unreadable file")
    p = root / "surrogate.jsonl"
    p.write_text('{"text": "fine"}\n{"text": "bad \\udc80 byte"}\n', encoding="utf-8")
    cases["lone surrogate escape"] = ([str(p)], r"surrogate\.jsonl:2: lone surrogate U\+DC80")
    cases["a file named twice"] = ([str(good), str(root / "*.jsonl")], r"good\.jsonl: named by two inputs")
    p = root / "notes.csv"
    p.write_text("a,b\n", encoding="utf-8")
    cases["unknown extension"] = ([str(p)], r"notes\.csv: unknown extension")
    return cases


def test_bad_input_fails_before_training(tmp_path: Path) -> None:
    for name, (inputs, pattern) in bad_inputs(tmp_path / "in").items():
        out = tmp_path / "out" / name.replace(" ", "_")
        with pytest.raises(CorpusError, match=pattern):
            train_split_merge(inputs, out, vocab_size=300, workers=2, show_progress=False)
        assert not (out / "tokenizer.json").exists(), name
        assert not (out / "split_merge_work").exists(), f"{name}: a chunk was written before the error"


def test_bad_settings_are_rejected(corpus, tmp_path: Path) -> None:
    src = corpus["sources"][:1]
    for kwargs, pattern in [
        ({"vocab_size": 100}, "vocab_size=100"),
        ({"chunk_vocab_size": 10}, "chunk_vocab_size=10"),
        ({"workers": 0}, "workers=0"),
        ({"chunks": 2, "chunk_bytes": 10}, "not both"),
        ({"chunks": 0}, "chunks=0"),
        ({"trainer": "bpe"}, "trainer='bpe'"),
        ({"sweep": (1000, 500, 3)}, "sweep="),
    ]:
        with pytest.raises(ValueError, match=pattern):
            train_split_merge(src, tmp_path / "o", show_progress=False, **kwargs)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        train_split_merge(src, tmp_path / "file", show_progress=False)


# ---------------------------------------------------------------- command line


@pytest.mark.slow
def test_launch_split_merge(corpus, tmp_path: Path) -> None:
    out = tmp_path / "tok"
    cmd = [sys.executable, str(REPO / "launch" / "train_tokenizer.py"), "--input", *corpus["sources"]]
    done = subprocess.run(
        [
            *cmd,
            "--output",
            str(out),
            "--vocab-size",
            "500",
            "--chunk-bytes",
            "30K",
            "--workers",
            "2",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    stats = json.loads((out / "training_stats.json").read_text())
    assert stats["vocab_size"] == 500 and stats["workers"] == 2
    assert len(stats["chunks"]) == sum(math.ceil(s["bytes"] / (30 * 1024)) for s in stats["sources"])
    assert not (out / "split_merge_work").exists()  # work files removed without --keep-work
    tok = NumericUnigramTokenizer.load(out)
    assert tok.decode(tok.encode(SAMPLES[0])) == SAMPLES[0]
    for extra, message in [
        (["--chunks", "2", "--chunk-bytes", "1M"], "not allowed with argument"),
        (["--sweep", "10:20"], "sweep '10:20'"),
        (["--chunk-bytes", "lots"], "not a size"),
    ]:
        bad = subprocess.run(
            [*cmd, "--output", str(out), *extra], capture_output=True, text=True, timeout=120
        )
        assert bad.returncode != 0 and message in bad.stderr, bad.stderr
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\n{oops\n', encoding="utf-8")
    bad = subprocess.run(
        [*cmd[:3], str(p), "--output", str(tmp_path / "o2"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "bad.jsonl:2: invalid JSON" in bad.stderr
