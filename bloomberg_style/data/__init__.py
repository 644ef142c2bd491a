"""Data: token shards and domain mixtures, built from corpus documents with a trained tokenizer.

shards       documents -> megatron-core IndexedDataset (.bin/.idx) + stats
mixture      shards -> GPTDataset rows: a weighted training blend, validation per domain
build        what launch/prepare_data.py does: demo corpus, tokenizer, shards, as needed
unigram      the unigram baseline (frequencies only) a model's validation loss is compared with

The corpus readers are bloomberg_style/corpus.py (below the tokenizer, which reads corpora
too) and the demo corpus is bloomberg_style/demo/corpus.py; both are re-exported here.

megatron-core is imported only inside the functions that need it, so the
corpus readers and the demo corpus load fast.
"""

from bloomberg_style.corpus import (
    CorpusError,
    CorpusStats,
    Document,
    iter_documents,
    iter_texts,
    resolve_inputs,
)
from bloomberg_style.data.mixture import (
    DomainSpec,
    MegatronTokenizerInfo,
    MixtureDatasets,
    build_datasets,
    ensure_process_group,
)
from bloomberg_style.data.shards import ShardStats, read_token_shard, write_token_shard
from bloomberg_style.demo.corpus import (
    DOMAINS,
    generate_financial_documents,
    generate_general_documents,
    write_demo_corpus,
)

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
