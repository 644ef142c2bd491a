"""Numeric-aware byte-level Unigram tokenizer (BloombergGPT, arXiv 2303.17564 section 2.3).

pretokenize  the paper's regex (digits alone, multi-word letter runs) + byte symbols
unigram      train one Unigram model on texts -> UnigramModel (pieces, bytes seen)
merge        byte-weighted merge of chunk models, prune to the final vocabulary
numeric_unigram  NumericUnigramTokenizer: build from a model, save/load, encode/decode
"""

from tokenizer.merge import merge_unigram_models, prune_unigram_model
from tokenizer.numeric_unigram import EOD_ID, EOD_TOKEN, NumericUnigramTokenizer, train_from_texts
from tokenizer.pretokenize import (
    BYTE_SYMBOLS,
    PRETOKENIZE_PATTERN,
    build_pre_tokenizer,
    from_byte_level,
    pretokenize,
    to_byte_level,
)
from tokenizer.unigram import UnigramModel, train_unigram

__all__ = [
    "BYTE_SYMBOLS",
    "EOD_ID",
    "EOD_TOKEN",
    "PRETOKENIZE_PATTERN",
    "NumericUnigramTokenizer",
    "UnigramModel",
    "build_pre_tokenizer",
    "from_byte_level",
    "merge_unigram_models",
    "pretokenize",
    "prune_unigram_model",
    "to_byte_level",
    "train_from_texts",
    "train_unigram",
]
