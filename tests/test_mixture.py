"""Domain mixtures through megatron-core's GPTDataset and BlendedDataset (real shards, real tokenizer)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bloomberg_style.data.mixture import DomainSpec, build_datasets, ensure_process_group, split_string
from bloomberg_style.data.shards import read_token_shard, write_token_shard
from bloomberg_style.demo.corpus import write_demo_corpus

SEQ_LEN = 32
WEIGHTS = {"financial": 0.7, "general": 0.3}
TRAIN_SAMPLES = 3000


@pytest.fixture(scope="module")
def shards(tmp_path_factory, demo_tokenizer) -> dict[str, str]:
    root = tmp_path_factory.mktemp("mixture")
    write_demo_corpus(root / "corpus", seed=31, docs_per_domain=80)
    return {
        name: write_token_shard(
            [root / "corpus" / name], demo_tokenizer, root / "shards" / name, progress=False
        ).prefix
        for name in WEIGHTS
    }


def domains(shards: dict[str, str]) -> list[DomainSpec]:
    return [DomainSpec(name, shards[name], WEIGHTS[name]) for name in WEIGHTS]


def build(shards, tokenizer, cache_dir, seed=9, **kw):
    kw.setdefault("valid_fraction", 0.1)
    return build_datasets(
        domains(shards), seq_len=SEQ_LEN, seed=seed, train_samples=TRAIN_SAMPLES,
        eod_id=tokenizer.eod_id, vocab_size=tokenizer.vocab_size, cache_dir=cache_dir, **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def mix(shards, demo_tokenizer, tmp_path_factory):
    return build(shards, demo_tokenizer, tmp_path_factory.mktemp("cache"))


def documents(prefix: str, start: int, stop: int) -> str:
    """Documents [start, stop) of a shard without their EOD, as '| 1 2 3 | 4 5 |' for substring tests."""
    shard = read_token_shard(prefix)
    return (
        "|"
        + "|".join(" " + " ".join(map(str, shard[i][:-1].tolist())) + " " for i in range(start, stop))
        + "|"
    )


def check_row_comes_from(row: torch.Tensor, docs: str, eod: int) -> None:
    """A row is a window of EOD-joined documents: inner pieces are whole documents, the ends are a
    suffix / prefix of one."""
    pieces = np.split(row.numpy(), np.flatnonzero(row.numpy() == eod))
    pieces = [pieces[0]] + [p[1:] for p in pieces[1:]]  # drop the EOD that starts each later piece
    for k, piece in enumerate(pieces):
        text = " ".join(map(str, piece.tolist()))
        if not text:
            continue
        left = "|" if k > 0 else ""  # after an EOD the piece starts a document
        right = "|" if k < len(pieces) - 1 else ""  # before an EOD it ends one
        assert f"{left} {text} {right}" in docs, f"piece {k} of a row is not in the expected documents"


def test_samples_have_seq_len_tokens_and_shifted_labels(mix, demo_tokenizer):
    assert len(mix.train) >= TRAIN_SAMPLES
    sample = mix.train[0]
    assert set(sample) == {"dataset_id", "tokens", "labels", "loss_mask", "position_ids"}
    assert sample["tokens"].dtype == torch.int64 and sample["loss_mask"].dtype == torch.float32
    for i in range(0, len(mix.train), 97):
        s = mix.train[i]
        assert s["tokens"].shape == s["labels"].shape == s["loss_mask"].shape == (SEQ_LEN,)
        assert torch.equal(s["tokens"][1:], s["labels"][:-1])
        assert torch.equal(s["position_ids"], torch.arange(SEQ_LEN)) and bool((s["loss_mask"] == 1).all())
        assert int(s["tokens"].max()) < demo_tokenizer.vocab_size


def test_blend_follows_the_weights_at_every_prefix(mix):
    ids = np.array([int(mix.train[i]["dataset_id"]) for i in range(len(mix.train))])
    n = np.arange(1, len(ids) + 1)
    financial_so_far = np.cumsum(ids == 0)
    assert np.abs(financial_so_far - WEIGHTS["financial"] * n).max() <= 1.0
    assert set(ids.tolist()) == {0, 1}


def test_train_rows_come_from_their_domains_train_documents(mix, shards, demo_tokenizer):
    eod = demo_tokenizer.eod_id
    train_docs = {name: documents(shards[name], 0, mix.summary[name]["train_documents"]) for name in WEIGHTS}
    names = list(WEIGHTS)
    for i in range(0, len(mix.train), 23):
        s = mix.train[i]
        row = torch.cat([s["tokens"], s["labels"][-1:]])
        check_row_comes_from(row, train_docs[names[int(s["dataset_id"])]], eod)


def test_validation_covers_each_domains_validation_documents_exactly_once(mix, shards, demo_tokenizer):
    eod = demo_tokenizer.eod_id
    assert sorted(mix.valid) == sorted(WEIGHTS)
    for name, ds in mix.valid.items():
        info = mix.summary[name]
        first_valid = info["train_documents"]
        assert info["valid_documents"] == 8 and info["documents"] == 80
        # put the rows back in stream order (megatron shuffles them) and rebuild the token stream
        rows = [ds[int(i)] for i in np.argsort(ds.shuffle_index)]
        stream = [int(rows[0]["tokens"][0])]
        for r in rows:
            stream += r["labels"][r["loss_mask"] == 1].tolist()
        assert sum(float(r["loss_mask"].sum()) for r in rows) == info["valid_tokens"] - 1
        assert len(stream) == info["valid_tokens"] and stream[-1] == eod
        shard = read_token_shard(shards[name])
        expected = sorted(tuple(shard[i].tolist()) for i in range(first_valid, info["documents"]))
        pieces = np.split(np.array(stream), np.flatnonzero(np.array(stream) == eod)[:-1] + 1)
        assert sorted(tuple(p.tolist()) for p in pieces) == expected
        valid_docs = documents(shards[name], first_valid, info["documents"])
        for r in rows:
            keep = r["loss_mask"] == 1
            check_row_comes_from(torch.cat([r["tokens"][:1], r["labels"][keep]]), valid_docs, eod)


def test_same_seed_same_samples_and_cache_reused(mix, shards, demo_tokenizer, tmp_path):
    again = build(shards, demo_tokenizer, tmp_path / "fresh_cache")  # recomputed from scratch
    for i in range(0, len(mix.train), 11):
        assert torch.equal(mix.train[i]["tokens"], again.train[i]["tokens"])
    files = sorted(p.name for p in mix.cache_dir.iterdir())
    reloaded = build(shards, demo_tokenizer, mix.cache_dir)  # same config: loaded from the cache
    assert sorted(p.name for p in mix.cache_dir.iterdir()) == files
    assert torch.equal(reloaded.valid["general"][3]["tokens"], mix.valid["general"][3]["tokens"])
    other = build(shards, demo_tokenizer, tmp_path / "other_seed", seed=10)
    differing = sum(not torch.equal(mix.train[i]["tokens"], other.train[i]["tokens"]) for i in range(50))
    assert differing > 40
    assert not ensure_process_group()  # the group started by the first build is reused


def test_bad_domains_fail_with_clear_errors(shards, demo_tokenizer, tmp_path):
    kw = dict(seq_len=SEQ_LEN, seed=1, train_samples=10, eod_id=0, vocab_size=demo_tokenizer.vocab_size)
    fin, gen = shards["financial"], shards["general"]
    with pytest.raises(FileNotFoundError, match="domain 'web': no token shard"):
        build_datasets([DomainSpec("web", str(tmp_path / "nope"))], **kw)
    with pytest.raises(ValueError, match="unique"):
        build_datasets([DomainSpec("a", fin), DomainSpec("a", gen)], **kw)
    for weight in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="weight must be a positive number"):
            build_datasets([DomainSpec("a", fin, weight)], **kw)
    with pytest.raises(ValueError, match="512-token tokenizer, larger than the model's vocab_size 256"):
        build_datasets([DomainSpec("a", fin)], **{**kw, "vocab_size": 256})
    build_datasets([DomainSpec("a", fin)], **{**kw, "vocab_size": 640})  # a padded model vocabulary is fine
    with pytest.raises(ValueError, match="leaves no validation documents out of 80"):
        build_datasets([DomainSpec("a", fin)], valid_fraction=0.001, **kw)
    with pytest.raises(ValueError, match="no domains"):
        build_datasets([], **kw)
    stats = json.loads(Path(f"{fin}.stats.json").read_text())
    assert stats["vocab_size"] == demo_tokenizer.vocab_size


def test_split_strings():
    assert split_string(valid_fraction=0.25) == "0.75,0.25,0"
    assert split_string(split="90,10") == "90,10,0"
    assert split_string(valid_fraction=1e-6) == "0.999999,0.000001,0"  # megatron reads no exponents
    for bad in ("a,b", "0,1,0", "90,5,5", "1,2,3,4"):
        with pytest.raises(ValueError, match="split"):
            split_string(split=bad)
    with pytest.raises(ValueError, match="valid_fraction"):
        split_string(valid_fraction=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        split_string(0.1, "90,10")
