"""Domain mixtures through megatron-core's GPTDataset and BlendedDataset (real shards, real tokenizer)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bloomberg_style.data.mixture import (
    DomainSpec,
    build_datasets,
    ensure_process_group,
    split_bounds,
    split_documents,
    split_string,
)
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


def documents(prefix: str, ids) -> str:
    """Documents `ids` of a shard without their EOD, as '| 1 2 3 | 4 5 |' for substring tests."""
    shard = read_token_shard(prefix)
    return "|" + "|".join(" " + " ".join(map(str, shard[int(i)][:-1].tolist())) + " " for i in ids) + "|"


def parts(mix) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each domain's (train, valid) document ids as split_documents draws them."""
    return {
        name: split_documents(mix.summary[name]["documents"], mix.split, VALID_SEED) for name in mix.summary
    }


VALID_SEED = 1234  # build_datasets' default


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
    train_docs = {name: documents(shards[name], parts(mix)[name][0]) for name in WEIGHTS}
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
        valid_ids = parts(mix)[name][1]
        assert info["valid_documents"] == 8 and info["documents"] == 80
        assert np.array_equal(ds.indices, valid_ids)  # the documents megatron reads are the draw
        # put the rows back in stream order (megatron shuffles them) and rebuild the token stream
        rows = [ds[int(i)] for i in np.argsort(ds.shuffle_index)]
        stream = [int(rows[0]["tokens"][0])]
        for r in rows:
            stream += r["labels"][r["loss_mask"] == 1].tolist()
        assert sum(float(r["loss_mask"].sum()) for r in rows) == info["valid_tokens"] - 1
        assert len(stream) == info["valid_tokens"] and stream[-1] == eod
        shard = read_token_shard(shards[name])
        expected = sorted(tuple(shard[int(i)].tolist()) for i in valid_ids)
        pieces = np.split(np.array(stream), np.flatnonzero(np.array(stream) == eod)[:-1] + 1)
        assert sorted(tuple(p.tolist()) for p in pieces) == expected
        valid_docs = documents(shards[name], valid_ids)
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
    for name in WEIGHTS:  # a rebuild (a resume) holds out the same documents, whatever the row seed
        for build_ in (again, reloaded, other):
            assert np.array_equal(build_.valid[name].indices, mix.valid[name].indices)
        assert torch.equal(again.valid[name][0]["tokens"], mix.valid[name][0]["tokens"])
    assert not ensure_process_group()  # the group started by the first build is reused


def test_split_documents_keeps_megatrons_sizes_and_draws_across_the_shard():
    split, n = split_string(valid_fraction=0.02), 5000
    train, valid = split_documents(n, split, VALID_SEED)
    (t0, t1), (v0, v1) = split_bounds(split, n)
    assert (len(train), len(valid)) == (t1 - t0, v1 - v0) == (4900, 100)
    assert (np.diff(train) > 0).all() and (np.diff(valid) > 0).all()  # each sorted (file order), no repeats
    assert np.array_equal(np.union1d(train, valid), np.arange(n)) and not np.intersect1d(train, valid).size
    assert (valid < n // 2).any() and not (valid >= n - len(valid)).all()  # not the tail
    assert len(np.unique(valid * 10 // n)) == 10  # every tenth of the file gives some
    assert np.array_equal(split_documents(n, split, VALID_SEED)[1], valid)  # a pure function
    other = split_documents(n, split, VALID_SEED + 1)[1]
    assert len(np.intersect1d(other, valid)) < 20  # another seed, another draw


def test_validation_documents_are_spread_and_never_trained_on(mix, shards):
    for k, name in enumerate(WEIGHTS):
        info, (train_ids, valid_ids) = mix.summary[name], parts(mix)[name]
        n, valid = info["documents"], mix.valid[name].indices
        assert np.array_equal(valid, valid_ids) and valid.min() < n // 2
        assert not np.array_equal(valid, np.arange(n - len(valid), n))  # not the tail
        train = mix.train.datasets[k]  # the domain's GPTDataset inside the blend
        assert np.array_equal(train.indices, train_ids)
        # training rows read documents through document_index only: no validation document there
        assert set(np.unique(train.document_index).tolist()) == set(train_ids.tolist())
        assert not np.intersect1d(train.document_index, valid).size
        shard = read_token_shard(shards[name])  # kept alive: its lengths are a view of its mmap
        lengths = np.array(shard.sequence_lengths)
        assert (info["train_documents"], info["valid_documents"]) == (len(train.indices), len(valid))
        assert info["train_tokens"] == int(lengths[train.indices].sum())
        assert info["valid_tokens"] == int(lengths[valid].sum())


def test_another_valid_seed_draws_other_documents_in_a_new_cache(mix, shards, demo_tokenizer):
    files = {p.name for p in mix.cache_dir.iterdir()}
    other = build(shards, demo_tokenizer, mix.cache_dir, valid_seed=7)
    assert {p.name for p in mix.cache_dir.iterdir()} > files  # its own indices, not the cached ones
    for k, name in enumerate(WEIGHTS):
        valid = other.valid[name].indices
        assert not np.array_equal(valid, mix.valid[name].indices)
        assert np.array_equal(valid, split_documents(80, other.split, 7)[1])
        assert other.summary[name]["valid_documents"] == len(valid)
        assert not np.intersect1d(other.train.datasets[k].document_index, valid).size


def test_an_index_cache_of_the_old_contiguous_split_is_not_reused(shards, demo_tokenizer, tmp_path):
    from bloomberg_style.data.mixture import MegatronTokenizerInfo
    from bloomberg_style.data.shards import import_megatron_datasets

    megatron = import_megatron_datasets()
    gpt, split = megatron.gpt_dataset, split_string(valid_fraction=0.1)
    prefix = str(Path(shards["general"]).resolve())  # the path build_datasets gives megatron
    old_config = gpt.GPTDatasetConfig(  # what build_datasets configured before the seeded draw
        random_seed=9, sequence_length=SEQ_LEN, blend=([prefix], None), split=split,
        path_to_cache=str(tmp_path), tokenizer=MegatronTokenizerInfo(demo_tokenizer.eod_id, demo_tokenizer.vocab_size),
        reset_position_ids=False, reset_attention_mask=False, eod_mask_loss=False,
        create_attention_mask=False, drop_last_partial_validation_sequence=False,
    )  # fmt: skip
    builder = megatron.blended_megatron_dataset_builder.BlendedMegatronDatasetBuilder
    _, old, _ = builder(gpt.GPTDataset, [0, None, 0], lambda: True, old_config).build()
    assert np.array_equal(old.indices, np.arange(72, 80))  # megatron's own split: the tail
    old_files = {p.name for p in tmp_path.iterdir()}
    new = build(shards, demo_tokenizer, tmp_path).valid["general"]
    assert new.unique_identifiers["class"] == "SeededSplitGPTDataset"
    assert new.unique_identifiers["valid_seed"] == VALID_SEED
    assert new.unique_description_hash != old.unique_description_hash
    assert {p.name for p in tmp_path.iterdir()} > old_files
    assert np.array_equal(new.indices, split_documents(80, split, VALID_SEED)[1])
    assert set(np.unique(new.document_index).tolist()) == set(new.indices.tolist())  # not the old cache's


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
    for seed in (-1, 1.5, True):
        with pytest.raises(ValueError, match="valid_seed must be a non-negative integer"):
            build_datasets([DomainSpec("a", fin)], valid_seed=seed, **kw)
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
