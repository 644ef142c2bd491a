"""Split-and-merge: combine Unigram models trained on separate chunks, then prune.

The paper trained one Unigram model per corpus chunk (no single machine can
hold the statistics of 700B tokens) and merged them hierarchically:

    p(t) = sum_i  w_i * p_i(t),   w_i = bytes_i / sum_j bytes_j

where p_i(t) = 0 if model i lacks t. Because the merged model carries
bytes = sum_i bytes_i, merging chunks within a domain and then the domains
gives the same result as merging all chunks at once. The union is far larger
than the target vocabulary, so ``prune_unigram_model`` keeps the most probable
pieces and renormalises.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tokenizer.unigram import MIN_VOCAB_SIZE, UnigramModel, most_probable, normalised


def merge_unigram_models(models: Sequence[UnigramModel]) -> UnigramModel:
    """Byte-weighted average of the models' piece probabilities (absent piece = 0)."""
    if not models:
        raise ValueError("merge_unigram_models needs at least one model")
    for i, m in enumerate(models):
        if m.bytes_seen <= 0:
            raise ValueError(f"model {i} has bytes_seen={m.bytes_seen}; a merge weights models by bytes seen")
        if not m.pieces:
            raise ValueError(f"model {i} has no pieces")
    total = sum(m.bytes_seen for m in models)
    merged: dict[str, float] = {}
    for m in models:
        w = m.bytes_seen / total
        for piece, p in m.probabilities().items():
            merged[piece] = merged.get(piece, 0.0) + w * p
    pieces = [(piece, math.log(p)) for piece, p in merged.items() if p > 0.0]
    return UnigramModel(pieces=normalised(pieces), bytes_seen=total)


def prune_unigram_model(model: UnigramModel, vocab_size: int) -> UnigramModel:
    """Keep the ``vocab_size - 1`` most probable pieces (always all 256 byte symbols), renormalised.

    ``vocab_size`` counts the final tokenizer, so one id is left for EOD:
    ``NumericUnigramTokenizer.from_model(prune_unigram_model(m, V)).vocab_size == V``
    whenever m has at least V - 1 pieces.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size={vocab_size} is below {MIN_VOCAB_SIZE} (256 byte symbols + EOD)")
    kept = most_probable(model.pieces, vocab_size - 1)
    return UnigramModel(pieces=normalised(kept), bytes_seen=model.bytes_seen)
