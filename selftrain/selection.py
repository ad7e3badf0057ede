"""Choose which pool images become pseudo-labels.

Everything here works on plain arrays of class probabilities (one row per pool
image), so any classifier, Keras or scikit-learn, can use it.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import entropy as _entropy

STRATEGIES = ("entropy", "max_probability", "balanced", "random")


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Return the predictive entropy (nats) of each row of class probabilities.

    Parameters
    ----------
    probabilities : numpy.ndarray of shape (n, n_classes)

    Returns
    -------
    numpy.ndarray of shape (n,)
        0 for a one-hot row, ``log(n_classes)`` for a uniform row.

    Examples
    --------
    >>> entropy(np.array([[1.0, 0.0], [0.5, 0.5]])).round(3)
    array([0.   , 0.693])
    """
    return _entropy(np.asarray(probabilities, dtype=np.float64), axis=1)


def select(
    probabilities: np.ndarray,
    k: int,
    strategy: str = "entropy",
    seed: int | None = None,
) -> np.ndarray:
    """Return the rows of the ``k`` pool images to pseudo-label.

    Parameters
    ----------
    probabilities : numpy.ndarray of shape (n, n_classes)
        Class probabilities of the pool images.
    k : int
        How many to choose; all ``n`` when ``k >= n``.
    strategy : {"entropy", "max_probability", "balanced", "random"}
        ``entropy``: the ``k`` lowest entropies. ``max_probability``: the ``k``
        highest top-class probabilities. ``balanced``: ``k`` split evenly over
        the predicted classes, lowest entropy first within each class; a class
        with too few candidates leaves its share to the lowest entropies left.
        ``random``: ``k`` drawn uniformly, the control for confidence.
    seed : int, optional
        Seeds the ``random`` strategy.

    Returns
    -------
    numpy.ndarray of int
        Distinct row positions, most confident first (drawing order for
        ``random``).

    Raises
    ------
    ValueError
        For an unknown strategy or ``k < 1``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(
            f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}."
        )
    if k < 1:
        raise ValueError(f"k is {k}; it must be at least 1.")
    probabilities = np.asarray(probabilities)
    n = len(probabilities)
    k = min(k, n)

    if strategy == "random":
        return np.random.default_rng(seed).choice(n, size=k, replace=False)
    if strategy == "max_probability":
        return np.argsort(-probabilities.max(axis=1), kind="stable")[:k]

    order = np.argsort(entropy(probabilities), kind="stable")
    if strategy == "entropy":
        return order[:k]
    return _balanced(order, probabilities.argmax(axis=1), k, probabilities.shape[1])


def _balanced(order: np.ndarray, predicted: np.ndarray, k: int, n_classes: int):
    """Take ``k // n_classes`` (+1 for the first ``k % n_classes``) per class."""
    quotas = np.full(n_classes, k // n_classes)
    quotas[: k % n_classes] += 1

    chosen = []
    for c in range(n_classes):
        chosen.extend(order[predicted[order] == c][: quotas[c]])

    # Classes short of candidates leave room for the most confident of the rest.
    shortfall = k - len(chosen)
    if shortfall:
        taken = np.zeros(len(order), dtype=bool)
        taken[chosen] = True
        chosen.extend(order[~taken[order]][:shortfall])

    chosen = np.asarray(chosen, dtype=np.intp)
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return chosen[np.argsort(rank[chosen], kind="stable")]
