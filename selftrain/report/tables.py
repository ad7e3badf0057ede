"""Tidy tables gathered from every iteration's checkpoint.

Every table has one row per observation and plain columns, so it reads the
same in pandas, a spreadsheet or the report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from selftrain import atomic
from selftrain.data import CLASS_NAMES

SPLITS = ("validation", "test")
SCORES = ("f1_weighted", "f1_macro", "accuracy")
KEYS = ["run", "seed", "iteration"]


def read_metrics(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """Read ``metrics.json`` files."""
    return [json.loads(Path(p).read_text()) for p in paths]


def iteration_table(
    metrics: list[dict], benchmarks: Sequence[str | os.PathLike] | None = None
) -> pd.DataFrame:
    """Return one row per run, seed and iteration.

    Parameters
    ----------
    metrics : list of dict
        Contents of ``metrics.json`` files.
    benchmarks : sequence of path-like, optional
        Snakemake benchmark files of the same jobs, in the same order; adds
        ``job_seconds`` (wall time of the whole job, imports included) and
        ``peak_rss_mb``.

    Returns
    -------
    pandas.DataFrame
        Identification, sizes, scores as ``{split}_{score}`` (for example
        ``test_f1_weighted``), pseudo-label precision, epochs, seconds per
        phase and per epoch, sorted by run, seed and iteration.
    """
    rows = []
    for m in metrics:
        row = {k: v for k, v in m.items() if not isinstance(v, (dict, list))}
        if "model" in m:
            row["architecture"] = m["model"]["name"]
        for split in SPLITS:
            row.update({f"{split}_{s}": m[split][s] for s in SCORES})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["seconds_per_epoch"] = table["seconds_train"] / table["epochs"]
    if benchmarks is not None:
        bench = pd.concat([pd.read_csv(p, sep="\t") for p in benchmarks])
        table["job_seconds"] = bench["s"].to_numpy()
        table["peak_rss_mb"] = bench["max_rss"].to_numpy()
    return table.sort_values(KEYS, ignore_index=True)


def per_class_table(metrics: list[dict], class_names: Sequence[str]) -> pd.DataFrame:
    """Return test F1 per class: one row per run, seed, iteration and class."""
    rows = [
        {
            "run": m["run"],
            "seed": m["seed"],
            "iteration": m["iteration"],
            "class_index": c,
            "class": class_names[c],
            "test_f1": f1,
        }
        for m in metrics
        for c, f1 in enumerate(m["test"]["f1_per_class"])
    ]
    return pd.DataFrame(rows).sort_values([*KEYS, "class_index"], ignore_index=True)


def selection_table(
    selections: Iterable[tuple[str, int, str | os.PathLike]],
    class_names: Sequence[str],
) -> pd.DataFrame:
    """Return the class mix of the chosen pseudo-labels.

    Parameters
    ----------
    selections : iterable of (run, seed, path)
        Each iteration's ``selected.csv``.
    class_names : sequence of str

    Returns
    -------
    pandas.DataFrame
        One row per run, seed, iteration and predicted class: ``n_selected``
        and ``n_correct`` (pseudo-label equals the hidden true label).
    """
    frames = []
    for run, seed, path in selections:
        selected = pd.read_csv(path)
        if selected.empty:
            continue
        selected["correct"] = selected["pseudo_label"] == selected["true_label"]
        counts = selected.groupby(["iteration", "pseudo_label"])["correct"].agg(
            n_selected="size", n_correct="sum"
        )
        frames.append(counts.reset_index().assign(run=run, seed=seed))
    columns = [*KEYS, "class_index", "class", "n_selected", "n_correct"]
    if not frames:
        return pd.DataFrame(columns=columns)
    table = pd.concat(frames, ignore_index=True)
    table = table.rename(columns={"pseudo_label": "class_index"})
    table["class"] = [class_names[c] for c in table["class_index"]]
    return table[columns].sort_values([*KEYS, "class_index"], ignore_index=True)


def interval95(values: np.ndarray) -> tuple[float, float, float]:
    """Return the mean and a 95% Student-t interval; NaN bounds for one value."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * stats.sem(values)
    return mean, mean - half, mean + half


SUMMARISED = (
    "test_f1_weighted",
    "test_f1_macro",
    "validation_f1_weighted",
    "pseudo_label_precision",
    "n_train",
    "seconds_train",
)


def summary_table(iterations: pd.DataFrame) -> pd.DataFrame:
    """Return mean and 95% interval across seeds per run and iteration.

    Columns: ``run``, ``iteration``, ``n_seeds``, and for each summarised
    quantity ``{name}_mean``, ``{name}_low``, ``{name}_high`` (NaN bounds with
    one seed).
    """
    rows = []
    for (run, iteration), group in iterations.groupby(["run", "iteration"]):
        row = {"run": run, "iteration": iteration, "n_seeds": len(group)}
        for name in SUMMARISED:
            values = group[name].dropna()
            if values.empty:
                row.update({f"{name}_{s}": np.nan for s in ("mean", "low", "high")})
                continue
            mean, low, high = interval95(values)
            row.update({f"{name}_mean": mean, f"{name}_low": low, f"{name}_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


# (x, y, scale of the slope, what the slope means)
TIMING_FITS = (
    ("n_train", "seconds_per_epoch", 1000, "seconds per epoch per 1,000 images"),
    ("n_train", "seconds_train", 1000, "training seconds per 1,000 images"),
    ("epochs", "seconds_train", 1, "training seconds per epoch"),
    ("iteration", "job_seconds", 1, "job seconds per iteration"),
)


def timing_table(iterations: pd.DataFrame) -> pd.DataFrame:
    """Fit straight lines to how time grows with data and iterations, per run.

    Returns
    -------
    pandas.DataFrame
        One row per run and fit: ``x``, ``y``, ``slope`` (scaled as named in
        ``meaning``), ``intercept`` (seconds), ``r2`` and ``n`` points. A fit
        with fewer than three points or a constant ``x`` is left out.
    """
    rows = []
    for run, group in iterations.groupby("run"):
        for x, y, scale, meaning in TIMING_FITS:
            if y not in group:
                continue
            points = group[[x, y]].dropna()
            if len(points) < 3 or points[x].nunique() < 2:
                continue
            fit = stats.linregress(points[x], points[y])
            rows.append(
                {
                    "run": run,
                    "x": x,
                    "y": y,
                    "slope": fit.slope * scale,
                    "meaning": meaning,
                    "intercept": fit.intercept,
                    "r2": fit.rvalue**2,
                    "n": len(points),
                }
            )
    columns = ["run", "x", "y", "slope", "meaning", "intercept", "r2", "n"]
    return pd.DataFrame(rows, columns=columns)


# Runs that train on the pool's true labels: reference points, never the product.
USES_TRUE_POOL_LABELS = ("oracle", "upper_bound")


def choose_final(iterations: pd.DataFrame) -> pd.Series:
    """Choose the final classifier by validation F1 alone.

    The run whose last iterations have the highest mean validation weighted
    F1 across seeds wins; within it, the seed with the highest validation F1
    at its last iteration. Test scores play no part, and runs that train on
    the pool's true labels (oracle, upper bound) are not candidates.

    Returns
    -------
    pandas.Series
        The chosen row of ``iterations``.
    """
    if "strategy" in iterations:
        candidates = ~iterations["strategy"].isin(USES_TRUE_POOL_LABELS)
        if candidates.any():
            iterations = iterations[candidates]
    last = iterations.loc[iterations.groupby(["run", "seed"])["iteration"].idxmax()]
    best_run = last.groupby("run")["validation_f1_weighted"].mean().idxmax()
    chain_ends = last[last["run"] == best_run]
    return chain_ends.loc[chain_ends["validation_f1_weighted"].idxmax()]


def write_tables(
    metrics_paths: Sequence[str | os.PathLike],
    benchmark_paths: Sequence[str | os.PathLike],
    selection_paths: Sequence[str | os.PathLike],
    outputs: dict[str, str | os.PathLike],
) -> dict[str, pd.DataFrame]:
    """Build every table of a study and write each to CSV.

    Parameters
    ----------
    metrics_paths, benchmark_paths, selection_paths : sequence of path-like
        Each iteration's ``metrics.json``, Snakemake benchmark and
        ``selected.csv``, in the same order.
    outputs : dict
        Paths for ``iterations``, ``per_class``, ``selections``, ``summary``
        and ``timing``.

    Returns
    -------
    dict of pandas.DataFrame
        The tables, by the same names.
    """
    metrics = read_metrics(metrics_paths)
    iterations = iteration_table(metrics, benchmark_paths)
    built = {
        "iterations": iterations,
        "per_class": per_class_table(metrics, CLASS_NAMES),
        "selections": selection_table(
            [
                (m["run"], m["seed"], path)
                for m, path in zip(metrics, selection_paths, strict=True)
            ],
            CLASS_NAMES,
        ),
        "summary": summary_table(iterations),
        "timing": timing_table(iterations),
    }
    for name, table in built.items():
        atomic.write_csv(table, outputs[name])
    return built
