"""Scores of a classifier on labelled images."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from selftrain.data import N_CLASSES


def classification_scores(true: np.ndarray, predicted: np.ndarray) -> dict:
    """Return accuracy, weighted and macro F1, and F1 per class.

    Parameters
    ----------
    true, predicted : numpy.ndarray of int
        Class indices.

    Returns
    -------
    dict
        ``accuracy``, ``f1_weighted``, ``f1_macro`` (floats) and
        ``f1_per_class`` (a list of ``N_CLASSES`` floats; 0 for a class that is
        neither present nor predicted).

    Examples
    --------
    >>> s = classification_scores(np.array([0, 1, 1]), np.array([0, 1, 0]))
    >>> round(s["accuracy"], 3)
    0.667
    """
    labels = np.arange(N_CLASSES)

    def f1(average):
        return f1_score(
            true, predicted, labels=labels, average=average, zero_division=0
        )

    return {
        "accuracy": float(accuracy_score(true, predicted)),
        "f1_weighted": float(f1("weighted")),
        "f1_macro": float(f1("macro")),
        "f1_per_class": [float(v) for v in f1(None)],
    }
