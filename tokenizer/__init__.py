"""Numeric-aware byte-level Unigram tokenizer (BloombergGPT, arXiv 2303.17564 section 2.3).

pretokenize      the paper's regex (digits alone, multi-word letter runs) + byte symbols
unigram          train one Unigram model on texts -> UnigramModel (pieces, bytes seen)
merge            byte-weighted merge of chunk models, prune to the final vocabulary
split_merge      corpus-scale training: chunks in parallel workers, hierarchical merge
sweep            choose V by the encoded size of held-out text, tokens x log2(V)
numeric_unigram  NumericUnigramTokenizer: build from a model, save/load, encode/decode
"""

from tokenizer.merge import ModelMerger, merge_hierarchical, merge_unigram_models, prune_unigram_model
from tokenizer.numeric_unigram import EOD_ID, EOD_TOKEN, NumericUnigramTokenizer, train_from_texts
from tokenizer.pretokenize import (
    BYTE_SYMBOLS,
    PRETOKENIZE_PATTERN,
    build_pre_tokenizer,
    count_pretokens,
    from_byte_level,
    pretokenize,
    to_byte_level,
)
from tokenizer.split_merge import train_split_merge
from tokenizer.sweep import parse_sweep, plot_sweep, sweep_table, vocab_sweep
from tokenizer.unigram import TRAINERS, UnigramModel, train_unigram

__all__ = [
    "BYTE_SYMBOLS",
    "EOD_ID",
    "EOD_TOKEN",
    "PRETOKENIZE_PATTERN",
    "TRAINERS",
    "ModelMerger",
    "NumericUnigramTokenizer",
    "UnigramModel",
    "build_pre_tokenizer",
    "count_pretokens",
    "from_byte_level",
    "merge_hierarchical",
    "merge_unigram_models",
    "parse_sweep",
    "plot_sweep",
    "pretokenize",
    "prune_unigram_model",
    "sweep_table",
    "to_byte_level",
    "train_from_texts",
    "train_split_merge",
    "train_unigram",
    "vocab_sweep",
]
