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
from collections.abc import Iterable, Sequence

from tokenizer.unigram import MIN_VOCAB_SIZE, UnigramModel, most_probable, normalised


class ModelMerger:
    """Running byte-weighted sum of models, so a merge holds one model at a time plus the union.

    ``add`` each model as it arrives; ``result`` gives the merged model. The
    sum  sum_i bytes_i * p_i(t)  is all the state, so memory is the union of
    pieces, not the number of models.
    """

    def __init__(self) -> None:
        self.weighted: dict[str, float] = {}  # piece -> sum_i bytes_i * p_i(piece)
        self.bytes_seen = 0
        self.models = 0

    def add(self, model: UnigramModel, name: str | None = None) -> None:
        where = name or f"model {self.models}"
        if model.bytes_seen <= 0:
            raise ValueError(
                f"{where} has bytes_seen={model.bytes_seen}; a merge weights models by bytes seen"
            )
        if not model.pieces:
            raise ValueError(f"{where} has no pieces")
        w = model.bytes_seen
        acc = self.weighted
        for piece, p in model.probabilities().items():
            acc[piece] = acc.get(piece, 0.0) + w * p
        self.bytes_seen += w
        self.models += 1

    def result(self) -> UnigramModel:
        if not self.models:
            raise ValueError("merge_unigram_models needs at least one model")
        pieces = [(piece, math.log(s / self.bytes_seen)) for piece, s in self.weighted.items() if s > 0.0]
        return UnigramModel(pieces=normalised(pieces), bytes_seen=self.bytes_seen)


def merge_unigram_models(models: Iterable[UnigramModel]) -> UnigramModel:
    """Byte-weighted average of the models' piece probabilities (absent piece = 0)."""
    merger = ModelMerger()
    for m in models:
        merger.add(m)
    return merger.result()


def merge_hierarchical(groups: Sequence[Sequence[UnigramModel]]) -> UnigramModel:
    """The paper's order: merge the chunks of each group (domain), then the group models."""
    return merge_unigram_models(merge_unigram_models(g) for g in groups)


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
