"""Entropy and the selection strategies, on plain probability arrays."""

from __future__ import annotations

import numpy as np
import pytest

from selftrain import selection


def random_probabilities(n=200, classes=10, seed=0, sharpness=3.0):
    logits = np.random.default_rng(seed).normal(size=(n, classes)) * sharpness
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def test_entropy_of_known_rows():
    p = np.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0, 0]])
    assert selection.entropy(p) == pytest.approx([0.0, np.log(4), np.log(2)])


@pytest.mark.parametrize("strategy", selection.STRATEGIES)
def test_every_strategy_picks_exactly_k_distinct_rows(strategy):
    rows = selection.select(random_probabilities(), 37, strategy, seed=1)
    assert len(rows) == 37
    assert len(np.unique(rows)) == 37
    assert rows.min() >= 0 and rows.max() < 200


def test_entropy_picks_the_k_lowest_entropies_most_confident_first():
    p = random_probabilities()
    rows = selection.select(p, 25)
    h = selection.entropy(p)
    assert set(rows) == set(np.argsort(h)[:25])
    assert np.all(np.diff(h[rows]) >= 0)
    assert h[rows].max() <= np.delete(h, rows).min()


def test_max_probability_picks_the_highest_top_class_probability():
    p = random_probabilities()
    rows = selection.select(p, 25, "max_probability")
    top = p.max(axis=1)
    assert top[rows].min() >= np.delete(top, rows).max()


def test_k_larger_than_the_pool_takes_the_whole_pool():
    rows = selection.select(random_probabilities(n=7), 500)
    assert sorted(rows) == list(range(7))


def test_removing_the_selection_shrinks_the_pool_by_k():
    pool = np.arange(1000, 1200)
    rows = selection.select(random_probabilities(), 50)
    remaining = np.setdiff1d(pool, pool[rows])
    assert len(remaining) == len(pool) - 50
    assert not np.isin(pool[rows], remaining).any()


def test_balanced_takes_an_even_share_per_predicted_class():
    p = random_probabilities(n=1000)
    rows = selection.select(p, 50, "balanced")
    assert np.bincount(p[rows].argmax(axis=1), minlength=10).tolist() == [5] * 10


def test_balanced_fills_a_short_class_with_the_most_confident_rest():
    p = random_probabilities(n=300)
    predicted = p.argmax(axis=1)
    keep = np.concatenate(
        [np.flatnonzero(predicted != 0), np.flatnonzero(predicted == 0)[:2]]
    )
    p = p[keep]
    rows = selection.select(p, 50, "balanced")
    counts = np.bincount(p[rows].argmax(axis=1), minlength=10)
    assert len(rows) == 50 and len(np.unique(rows)) == 50
    assert counts[0] == 2
    assert counts[1:].min() >= 5


def test_random_is_seeded():
    p = random_probabilities()
    first = selection.select(p, 30, "random", seed=7)
    assert np.array_equal(first, selection.select(p, 30, "random", seed=7))
    assert not np.array_equal(first, selection.select(p, 30, "random", seed=8))


@pytest.mark.parametrize(
    ("k", "strategy", "message"),
    [(0, "entropy", "k is 0"), (-3, "entropy", "k is -3"), (5, "best", "unknown")],
)
def test_bad_arguments_are_refused(k, strategy, message):
    with pytest.raises(ValueError, match=message):
        selection.select(random_probabilities(), k, strategy)


def test_selection_works_under_a_scikit_learn_classifier(fashion):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    labeled = rng.choice(60000, 500, replace=False)
    pool = np.setdiff1d(rng.choice(60000, 1500, replace=False), labeled)
    features = fashion.train_images.reshape(60000, -1) / 255.0
    classifier = LogisticRegression(max_iter=2000).fit(
        features[labeled], fashion.train_labels[labeled]
    )
    probabilities = classifier.predict_proba(features[pool])
    rows = selection.select(probabilities, 100, "balanced")

    chosen = pool[rows]
    assert len(np.unique(chosen)) == 100
    assert not np.isin(chosen, labeled).any()
    pseudo_labels = classifier.classes_[probabilities[rows].argmax(axis=1)]
    # The most confident choices of even a linear model are mostly right.
    assert (pseudo_labels == fashion.train_labels[chosen]).mean() > 0.8
