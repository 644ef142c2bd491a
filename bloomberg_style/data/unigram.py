"""A unigram language model: the floor a trained model's validation loss must beat.

It predicts every token from its training frequency alone (add-one smoothing over the
vocabulary), so its cross-entropy is what a model learns with no context at all.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class UnigramBaseline:
    def __init__(self, vocab_size: int):
        self.counts = np.zeros(vocab_size, dtype=np.int64)

    def fit(self, token_arrays: Iterable[np.ndarray]) -> UnigramBaseline:
        for tokens in token_arrays:
            self.counts += np.bincount(np.asarray(tokens, dtype=np.int64), minlength=len(self.counts))
        return self

    @property
    def log_probs(self) -> np.ndarray:
        smoothed = self.counts + 1.0
        return np.log(smoothed / smoothed.sum())

    def cross_entropy(self, token_arrays: Iterable[np.ndarray]) -> float:
        """Mean negative log-likelihood (nats/token) of the given tokens."""
        logp = self.log_probs
        total, count = 0.0, 0
        for tokens in token_arrays:
            tokens = np.asarray(tokens, dtype=np.int64)
            total -= float(logp[tokens].sum())
            count += tokens.size
        if count == 0:
            raise ValueError("no tokens to evaluate the unigram baseline on")
        return total / count


def unigram_baselines(
    train_dataset, valid_datasets: dict, vocab_size: int, train_samples: int = 2000
) -> dict[str, float]:
    """Cross-entropy per validation domain of a unigram model fit on training samples."""
    n = min(train_samples, len(train_dataset))
    model = UnigramBaseline(vocab_size).fit(_scored_labels(train_dataset[i]) for i in range(n))
    return {
        name: model.cross_entropy(_scored_labels(ds[i]) for i in range(len(ds)))
        for name, ds in valid_datasets.items()
    }


def _scored_labels(sample: dict) -> np.ndarray:
    """The target tokens a model is scored on (padding in the last validation row has mask 0)."""
    labels = np.asarray(sample["labels"])
    return labels[np.asarray(sample["loss_mask"]) > 0]
