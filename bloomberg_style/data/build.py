"""Make a run's inputs exist: demo corpus, tokenizer, token shards (each only if absent).

A run YAML may point at ready shards (prefixes) or at raw inputs; whatever is missing is
built here, on rank 0, before any model is built. Other ranks wait at a barrier, then
check that they can see the files (a node without the shared filesystem fails loudly).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bloomberg_style.config import ConfigError, DataSection
from bloomberg_style.corpus import iter_texts
from bloomberg_style.data.parts import parts_ready


def tokenizer_exists(folder: str | Path) -> bool:
    return (Path(folder) / "tokenizer.json").is_file()


def ensure_run_inputs(data: DataSection, log=print) -> None:
    """Build the demo corpus, tokenizer and shards that the config names but that are absent."""
    if data.demo_corpus and not (Path(data.demo_corpus) / "COMPLETE").is_file():
        from bloomberg_style.demo.corpus import write_demo_corpus

        t0 = time.perf_counter()
        kwargs = {"docs_per_domain": data.demo_docs_per_domain} if data.demo_docs_per_domain else {}
        written = write_demo_corpus(Path(data.demo_corpus), **kwargs)
        (Path(data.demo_corpus) / "COMPLETE").write_text(json.dumps({k: len(v) for k, v in written.items()}))
        log(f"demo corpus written to {data.demo_corpus} in {time.perf_counter() - t0:.1f}s")

    missing_shards = [d for d in data.domains if not parts_ready([d.prefix, *d.prefixes])]
    for d in missing_shards:
        if not d.inputs:
            raise ConfigError(
                f"data.domains[{d.name}]: no token shard at {d.prefix}.bin/.idx and no inputs to build it from"
            )

    if not tokenizer_exists(data.tokenizer):
        if missing_shards != list(data.domains) and not all(d.inputs for d in data.domains):
            raise ConfigError(
                f"data.tokenizer: no tokenizer.json in {data.tokenizer} and not every domain has inputs"
            )
        from tokenizer import NumericUnigramTokenizer

        inputs = [p for d in data.domains for p in d.inputs]
        t0 = time.perf_counter()
        log(f"training the tokenizer (vocab {data.tokenizer_vocab_size}) on {len(inputs)} input path(s)")
        tok = NumericUnigramTokenizer.train(
            iter_texts(inputs, text_field=data.text_field), data.tokenizer_vocab_size
        )
        tok.save(data.tokenizer)
        log(f"tokenizer saved to {data.tokenizer} ({tok.vocab_size} tokens, {time.perf_counter() - t0:.1f}s)")

    if missing_shards:
        from bloomberg_style.data.shards import load_run_tokenizer, write_token_shard

        tok = load_run_tokenizer(data.tokenizer)
        for d in missing_shards:
            Path(d.prefix).parent.mkdir(parents=True, exist_ok=True)
            stats = write_token_shard(d.inputs, data.tokenizer, d.prefix, text_field=data.text_field)
            log(f"shard {d.prefix}: {stats}")


def check_run_inputs(data: DataSection) -> None:
    """On every rank: the tokenizer and shards must be visible (shared filesystem)."""
    if not tokenizer_exists(data.tokenizer):
        raise ConfigError(f"data.tokenizer: {data.tokenizer}/tokenizer.json is not visible on this node")
    for d in data.domains:
        if not parts_ready([d.prefix, *d.prefixes]):
            raise ConfigError(
                f"data.domains[{d.name}].prefix: {d.prefix}.bin/.idx (or its parts) is not visible on this node"
            )
