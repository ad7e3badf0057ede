"""Tidy tables gathered from every iteration's metrics."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

SPLITS = ("validation", "test")
SCORES = ("f1_weighted", "f1_macro", "accuracy")


def read_metrics(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """Read ``metrics.json`` files."""
    return [json.loads(Path(p).read_text()) for p in paths]


def iteration_table(metrics: list[dict]) -> pd.DataFrame:
    """Return one row per run, seed and iteration.

    Parameters
    ----------
    metrics : list of dict
        Contents of ``metrics.json`` files.

    Returns
    -------
    pandas.DataFrame
        Identification, sizes, scores as ``{split}_{score}`` (for example
        ``test_f1_weighted``), pseudo-label precision, epochs and seconds per
        phase, sorted by run, seed and iteration.
    """
    rows = []
    for m in metrics:
        row = {k: v for k, v in m.items() if not isinstance(v, (dict, list))}
        for split in SPLITS:
            row.update({f"{split}_{s}": m[split][s] for s in SCORES})
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values(["run", "seed", "iteration"], ignore_index=True)


def per_class_table(metrics: list[dict], class_names: list[str]) -> pd.DataFrame:
    """Return test F1 per class, one row per run, seed, iteration and class."""
    rows = [
        {
            "run": m["run"],
            "seed": m["seed"],
            "iteration": m["iteration"],
            "class": name,
            "test_f1": f1,
        }
        for m in metrics
        for name, f1 in zip(class_names, m["test"]["f1_per_class"], strict=True)
    ]
    return pd.DataFrame(rows)
