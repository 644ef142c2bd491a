"""Data: corpus readers, the built-in demo corpus, token shards, domain mixtures.

corpus       files/folders/globs of .txt, .jsonl(.gz), .json, .parquet -> documents
demo_corpus  seeded synthetic financial + general documents (no downloads)
shards       documents -> megatron-core IndexedDataset (.bin/.idx) + stats
mixture      shards -> GPTDataset rows: a weighted training blend, validation per domain

megatron-core is imported only inside the functions that need it, so the
corpus readers and the demo corpus load fast.
"""

from bloomberg_style.data.corpus import (
    CorpusError,
    CorpusStats,
    Document,
    iter_documents,
    iter_texts,
    resolve_inputs,
)
from bloomberg_style.data.demo_corpus import (
    DOMAINS,
    generate_financial_documents,
    generate_general_documents,
    write_demo_corpus,
)
from bloomberg_style.data.mixture import (
    DomainSpec,
    MegatronTokenizerInfo,
    MixtureDatasets,
    build_datasets,
    ensure_process_group,
)
from bloomberg_style.data.shards import ShardStats, read_token_shard, write_token_shard

__all__ = [
    "DOMAINS",
    "CorpusError",
    "CorpusStats",
    "Document",
    "DomainSpec",
    "MegatronTokenizerInfo",
    "MixtureDatasets",
    "ShardStats",
    "build_datasets",
    "ensure_process_group",
    "generate_financial_documents",
    "generate_general_documents",
    "iter_documents",
    "iter_texts",
    "read_token_shard",
    "resolve_inputs",
    "write_demo_corpus",
    "write_token_shard",
]
