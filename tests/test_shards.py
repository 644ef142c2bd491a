"""Token shards: real tokenizer, real megatron-core IndexedDataset, exact round trips."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from bloomberg_style.corpus import CorpusError, iter_texts
from bloomberg_style.data.shards import ShardStats, read_token_shard, token_dtype, write_token_shard
from bloomberg_style.demo.corpus import write_demo_corpus

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shard_corpus")
    write_demo_corpus(root, seed=21, docs_per_domain=60, docs_per_file=25)
    (root / "general" / "extra.txt").write_text(
        "A plain text document: 12.5% of 1,000 is 125 — «ok».", encoding="utf-8"
    )
    (root / "general" / "blank.txt").write_text("   \n", encoding="utf-8")
    return root


def test_shard_decodes_back_to_every_document(corpus_dir, demo_tokenizer, tmp_path):
    prefix = tmp_path / "out" / "general"
    stats = write_token_shard([corpus_dir / "general"], demo_tokenizer, prefix, batch_size=16, progress=False)
    texts = list(iter_texts([corpus_dir / "general"]))
    assert len(texts) == 61  # 60 generated + extra.txt; blank.txt is skipped

    shard = read_token_shard(prefix)
    assert len(shard) == len(texts) == stats.documents
    assert shard.index.dtype == np.uint16 and shard.document_indices.tolist() == list(range(len(texts) + 1))
    eod = demo_tokenizer.eod_id
    for i, text in enumerate(texts):
        ids = shard[i]
        assert ids[-1] == eod and eod not in ids[:-1]  # one EOD, at the end of each document
        assert demo_tokenizer.decode(ids[:-1].tolist()) == text

    lengths = shard.sequence_lengths
    assert stats.tokens == int(lengths.sum()) == sum(len(t) + 1 for t in demo_tokenizer.encode_batch(texts))
    assert stats.bytes == sum(len(t.encode("utf-8")) for t in texts)
    assert stats.bytes_per_token == round(stats.bytes / stats.tokens, 4)
    assert (stats.empty_documents_skipped, stats.vocab_size, stats.eod_id, stats.dtype) == (
        1,
        512,
        eod,
        "uint16",
    )
    assert Path(f"{prefix}.bin").stat().st_size == 2 * stats.tokens
    assert ShardStats.load(prefix) == stats
    assert json.loads(Path(f"{prefix}.stats.json").read_text())["documents"] == 61
    assert sorted(p.name for p in prefix.parent.iterdir()) == [
        "general.bin",
        "general.idx",
        "general.stats.json",
    ]


def test_worker_processes_write_identical_shards(corpus_dir, demo_tokenizer_dir, tmp_path):
    one = write_token_shard([corpus_dir / "financial"], demo_tokenizer_dir, tmp_path / "one", progress=False)
    two = write_token_shard(
        [corpus_dir / "financial"],
        demo_tokenizer_dir,
        tmp_path / "two",
        workers=2,
        batch_size=7,
        progress=False,
    )
    for suffix in (".bin", ".idx"):
        assert (
            Path(f"{tmp_path / 'one'}{suffix}").read_bytes()
            == Path(f"{tmp_path / 'two'}{suffix}").read_bytes()
        )
    assert one.tokenizer == str(demo_tokenizer_dir.resolve())  # a directory argument is recorded
    assert (one.documents, one.tokens) == (two.documents, two.tokens) == (60, one.tokens)


def test_bad_input_fails_before_or_without_leaving_files(corpus_dir, demo_tokenizer, tmp_path):
    bad = tmp_path / "in" / "b.jsonl"
    bad.parent.mkdir()
    bad.write_text('{"text": "fine"}\n{"text": "fine"}\n{"oops": 1}\n', encoding="utf-8")
    prefix = tmp_path / "out" / "x"
    with pytest.raises(CorpusError, match=r"b\.jsonl:3: missing text field"):
        write_token_shard([corpus_dir / "general", bad], demo_tokenizer, prefix, progress=False)
    assert list(prefix.parent.iterdir()) == []  # no shard, no temporary files
    with pytest.raises(CorpusError, match="no such file"):
        write_token_shard([tmp_path / "missing"], demo_tokenizer, prefix, progress=False)
    with pytest.raises(CorpusError, match=r"b\.jsonl:3"):
        write_token_shard([bad], demo_tokenizer, prefix, workers=2, batch_size=1, progress=False)
    assert list(prefix.parent.iterdir()) == []
    with pytest.raises(ValueError, match="workers"):
        write_token_shard([bad], demo_tokenizer, prefix, workers=0)
    with pytest.raises(ValueError, match=r"ends in \.bin; give it without"):
        write_token_shard([bad], demo_tokenizer, tmp_path / "out" / "x.bin")
    with pytest.raises(FileNotFoundError, match="missing .*x.bin"):
        read_token_shard(prefix)


def test_token_dtype_follows_vocabulary_size():
    assert token_dtype(512) is np.uint16 and token_dtype(65_499) is np.uint16
    assert token_dtype(65_500) is np.int32 and token_dtype(131_072) is np.int32


def test_prepare_data_command(corpus_dir, demo_tokenizer_dir, tmp_path, capsys):
    sys.path.insert(0, str(REPO / "launch"))
    try:
        import prepare_data
    finally:
        sys.path.remove(str(REPO / "launch"))
    prefix = tmp_path / "cli" / "fin"
    args = [
        "--input",
        str(corpus_dir / "financial" / "part-0000*.jsonl"),
        "--tokenizer",
        str(demo_tokenizer_dir),
    ]
    assert prepare_data.main([*args, "--output", str(prefix), "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["documents"] == 60 and read_token_shard(prefix).sequence_lengths.sum() == printed["tokens"]
    with pytest.raises(SystemExit) as exit_info:
        prepare_data.main(["--input", str(tmp_path / "nothing"), "--tokenizer", str(demo_tokenizer_dir),
                           "--output", str(prefix)])  # fmt: skip
    assert exit_info.value.code == 2 and "nothing: no such file or folder" in capsys.readouterr().err
