"""The numbers an evaluation reports, each written out so the math is visible.

Language modelling
    loss             mean negative log-likelihood per scored token, in nats
    perplexity       exp(loss)
    bits per byte    total nats / (ln 2 * UTF-8 bytes of the scored text)

Loss per token depends on the tokenizer (a tokenizer with longer tokens has fewer,
harder-to-predict tokens); bits per byte divides the same total information by the size
of the text itself, so models with different tokenizers compare on it.

Classification (few-shot tasks)
    accuracy         share of items whose predicted label is the gold label
    weighted F1      per-label F1, averaged with weights = the label's share of gold labels
                     (scikit-learn's average="weighted"; what BloombergGPT reports for FPB,
                     FiQA SA and Headline)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

LN2 = math.log(2.0)


def perplexity(loss_nats: float) -> float:
    """exp(mean nats per token); inf rather than an OverflowError for a hopeless model."""
    return math.exp(loss_nats) if loss_nats < 700 else math.inf


def bits_per_byte(total_nats: float, total_bytes: int) -> float:
    """Total information in bits divided by the bytes it describes."""
    if total_bytes <= 0:
        raise ValueError(f"bits per byte needs a positive number of bytes, got {total_bytes}")
    return total_nats / (LN2 * total_bytes)


@dataclass
class LossTally:
    """Running sums over scored tokens: total nats, token count, UTF-8 bytes of their text."""

    nats: float = 0.0
    tokens: int = 0
    bytes: int = 0

    def add(self, nats: float, tokens: int, nbytes: int) -> None:
        self.nats += float(nats)
        self.tokens += int(tokens)
        self.bytes += int(nbytes)

    @property
    def loss(self) -> float:
        if self.tokens == 0:
            raise ValueError("no tokens were scored")
        return self.nats / self.tokens

    @property
    def perplexity(self) -> float:
        return perplexity(self.loss)

    @property
    def bits_per_token(self) -> float:
        return self.loss / LN2

    @property
    def bits_per_byte(self) -> float:
        return bits_per_byte(self.nats, self.bytes)

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else math.nan


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    _check_pairs(gold, predicted)
    return sum(g == p for g, p in zip(gold, predicted)) / len(gold)


def f1_per_label(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """F1 = 2PR / (P + R) of every label seen in gold or predictions (0 where P + R = 0)."""
    _check_pairs(gold, predicted)
    true_pos = Counter(g for g, p in zip(gold, predicted) if g == p)
    gold_count, pred_count = Counter(gold), Counter(predicted)
    scores = {}
    for label in sorted(set(gold) | set(predicted)):
        tp = true_pos[label]
        precision = tp / pred_count[label] if pred_count[label] else 0.0
        recall = tp / gold_count[label] if gold_count[label] else 0.0
        scores[label] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return scores


def weighted_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """sum over labels of F1(label) * (gold count of label / n): labels never gold weigh 0."""
    f1 = f1_per_label(gold, predicted)
    support = Counter(gold)
    return sum(f1[label] * count for label, count in support.items()) / len(gold)


def macro_f1(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> float:
    """Unweighted mean of F1 over the task's label set (labels never seen count as F1 = 0)."""
    f1 = f1_per_label(gold, predicted)
    return sum(f1.get(label, 0.0) for label in labels) / len(labels)


def _check_pairs(gold: Sequence[str], predicted: Sequence[str]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("no items to score")
