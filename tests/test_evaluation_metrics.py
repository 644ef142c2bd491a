"""Evaluation metrics and scoring rules on cases small enough to compute by hand."""

from __future__ import annotations

import math

import pytest

from bloomberg_style.evaluation.fewshot import RULES, argmax, rule_scores
from bloomberg_style.evaluation.metrics import (
    LossTally,
    accuracy,
    bits_per_byte,
    f1_per_label,
    macro_f1,
    perplexity,
    weighted_f1,
)


def test_bits_per_byte_of_a_known_distribution():
    # Three one-byte tokens predicted with p = 1/2, 1/4, 1/8: 1 + 2 + 3 bits over 3 bytes.
    tally = LossTally()
    for p in (1 / 2, 1 / 4, 1 / 8):
        tally.add(-math.log(p), tokens=1, nbytes=1)
    assert tally.bits_per_byte == pytest.approx(2.0)
    assert tally.loss == pytest.approx(2 * math.log(2))  # mean nats per token
    assert tally.bits_per_token == pytest.approx(2.0)
    assert tally.perplexity == pytest.approx(4.0)
    # The same information over text twice as long is half the bits per byte.
    assert bits_per_byte(tally.nats, 6) == pytest.approx(1.0)


def test_uniform_over_256_bytes_is_8_bits_per_byte():
    tally = LossTally()
    tally.add(1000 * math.log(256), tokens=1000, nbytes=1000)
    assert tally.bits_per_byte == pytest.approx(8.0)
    assert tally.perplexity == pytest.approx(256.0)


def test_bits_per_byte_rejects_empty_text_and_perplexity_saturates():
    with pytest.raises(ValueError, match="positive number of bytes"):
        bits_per_byte(1.0, 0)
    with pytest.raises(ValueError, match="no tokens"):
        _ = LossTally().loss
    assert perplexity(1e4) == math.inf


def test_weighted_f1_against_a_hand_calculation():
    gold = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    # a: P = 2/2, R = 2/3 -> F1 0.8;  b: P = 1/2, R = 1/2 -> 0.5;  c: P = 1/2, R = 1/1 -> 2/3
    assert f1_per_label(gold, pred) == pytest.approx({"a": 0.8, "b": 0.5, "c": 2 / 3})
    assert weighted_f1(gold, pred) == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert macro_f1(gold, pred, ["a", "b", "c"]) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert accuracy(gold, pred) == pytest.approx(4 / 6)


def test_weighted_f1_labels_only_predicted_weigh_nothing():
    gold = ["x", "x", "y", "y"]
    pred = ["x", "z", "y", "y"]
    # x: P 1, R 1/2 -> 2/3; y: P 1, R 1 -> 1; z: never gold, weight 0 (but it cost x its recall)
    assert weighted_f1(gold, pred) == pytest.approx((2 * (2 / 3) + 2 * 1.0) / 4)
    # Always predicting the majority label: F1 of that label times its share.
    assert weighted_f1(["x", "x", "x", "y"], ["x"] * 4) == pytest.approx(0.75 * (2 * 0.75 / 1.75))


def test_weighted_f1_matches_scikit_learn_when_installed():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    import random

    rng = random.Random(0)
    gold = [rng.choice("pnu") for _ in range(200)]
    pred = [g if rng.random() < 0.6 else rng.choice("pnu") for g in gold]
    assert weighted_f1(gold, pred) == pytest.approx(sklearn_metrics.f1_score(gold, pred, average="weighted"))


def test_metrics_reject_mismatched_or_empty_inputs():
    with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
        accuracy(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no items"):
        weighted_f1([], [])


def test_calibration_flips_the_decision():
    """Plain likelihood prefers the label the model says anyway; calibration removes that prior."""
    # (log p(answer | context), answer tokens) for labels [positive, negative]
    item = [(-1.0, 1), (-1.5, 1)]
    # Content-free: after "Answer:" the model says "positive" with p = e^-0.5, "negative" e^-2.5
    prior = [-0.5, -2.5]
    scores = rule_scores(item, prior)
    assert scores["plain"] == [-1.0, -1.5] and argmax(scores["plain"]) == 0
    assert scores["calibrated"] == pytest.approx([-0.5, 1.0]) and argmax(scores["calibrated"]) == 1


def test_length_normalisation_flips_the_decision():
    # A three-token answer loses on total log-likelihood but wins per token.
    item = [(-2.0, 1), (-3.0, 3)]
    scores = rule_scores(item, [0.0, 0.0])
    assert argmax(scores["plain"]) == 0
    assert scores["normalized"] == pytest.approx([-2.0, -1.0]) and argmax(scores["normalized"]) == 1
    assert set(scores) == set(RULES)


def test_ties_go_to_the_first_label():
    assert argmax([-1.0, -1.0, -2.0]) == 0
    assert argmax([-3.0, -1.0, -1.0]) == 1
