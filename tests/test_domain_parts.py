"""A domain of many part shards: manifest, glob and list all expand; the blend gets every part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bloomberg_style.config import ConfigError, DomainSection
from bloomberg_style.data.mixture import DomainSpec, build_datasets
from bloomberg_style.data.parts import expand_prefix, expand_prefixes, parts_ready
from bloomberg_style.data.prepare import prepare
from bloomberg_style.data.shards import write_token_shard
from bloomberg_style.demo.corpus import write_demo_corpus


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, demo_tokenizer_dir) -> dict[str, Path]:  # noqa: F811
    root = tmp_path_factory.mktemp("parts")
    write_demo_corpus(root / "corpus", seed=3, docs_per_domain=60, docs_per_file=10)
    fin = root / "shards" / "financial"
    prepare([str(root / "corpus" / "financial")], demo_tokenizer_dir, fin, workers=2, num_parts=4, merge=False,
            progress=False, log=lambda m: 0)  # fmt: skip
    gen = root / "shards" / "general"
    write_token_shard([root / "corpus" / "general"], demo_tokenizer_dir, gen, progress=False)
    return {"financial": fin, "general": gen, "root": root}


@pytest.mark.slow  # prepare_data's worker processes
def test_manifest_glob_and_list_expand_to_the_parts(prepared):
    fin = prepared["financial"]
    parts = [str(Path(f"{fin}.parts") / f"part-{i:05d}") for i in range(4)]
    assert not Path(f"{fin}.bin").exists() and expand_prefix(fin) == parts  # --no-merge: the manifest's parts
    assert expand_prefix(f"{fin}.parts/part-*") == parts
    assert expand_prefixes([f"{fin}.parts/part-0000[01]", parts[1], parts[3]]) == [
        parts[0],
        parts[1],
        parts[3],
    ]
    assert expand_prefix(prepared["general"]) == [str(prepared["general"])]
    assert parts_ready([str(fin)]) and not parts_ready([str(fin), "nowhere/x"]) and not parts_ready([""])


@pytest.mark.slow  # prepare_data's worker processes
def test_blend_gets_every_part_and_reports_the_domain(prepared, demo_tokenizer, tmp_path):  # noqa: F811
    fin, gen = prepared["financial"], prepared["general"]
    mix = build_datasets(
        [DomainSpec("financial", str(fin), 0.6), DomainSpec("general", "", 0.4, (str(gen),))],
        seq_len=32, seed=1, train_samples=2000, eod_id=demo_tokenizer.eod_id,
        vocab_size=demo_tokenizer.vocab_size, valid_fraction=0.1, cache_dir=tmp_path,
    )  # fmt: skip
    blend = mix.train.blend
    assert len(blend.datasets) == 5  # 4 financial parts + 1 general shard
    ids = np.array([int(mix.train[i]["dataset_id"]) for i in range(len(mix.train))])
    assert set(ids) == {0, 1} and abs((ids == 0).mean() - 0.6) < 0.01  # the domain's index and weight
    used_parts = set(np.unique(blend.dataset_index).tolist())
    assert used_parts == set(range(5))  # every part is sampled
    assert mix.summary["financial"]["documents"] == 60
    assert len(mix.valid["financial"]) > 0 and len(mix.valid["general"]) > 0


def test_config_accepts_prefix_lists_and_refuses_globs_with_inputs():
    DomainSection(name="web", prefixes=["shards/web-*", "shards/more"]).validate("data.domains[0]")
    with pytest.raises(ConfigError, match="prefix is empty"):
        DomainSection(name="web").validate("data.domains[0]")
    with pytest.raises(ConfigError, match="raw inputs need one output prefix"):
        DomainSection(name="web", prefix="shards/web-*", inputs=["corpus/web"]).validate("data.domains[0]")
