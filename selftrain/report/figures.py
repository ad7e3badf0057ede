"""The report's figures, drawn from the study's tables with matplotlib.

Each figure is saved as SVG (for the HTML and PDF) and PNG beside it, with
fixed metadata so that the same tables give the same files byte for byte.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from selftrain.atomic import replacing
from selftrain.report import FIGURES, text

plt.rcParams.update(
    {
        "svg.hashsalt": "selftrain",  # stable element ids in SVG
        "svg.fonttype": "none",  # text stays text: searchable in the PDF
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "figure.dpi": 100,
    }
)


def save(figure, folder: str | os.PathLike, name: str) -> list[Path]:
    """Write ``figure`` as ``name.svg`` and ``name.png`` in ``folder``."""
    folder = Path(folder)
    written = []
    for suffix, metadata in (
        (".svg", {"Date": None, "Creator": "selftrain"}),
        (".png", {"Software": "selftrain"}),
    ):
        path = folder / f"{name}{suffix}"
        with replacing(path) as tmp:
            figure.savefig(tmp, metadata=metadata, dpi=150, bbox_inches="tight")
        written.append(path)
    plt.close(figure)
    return written


def _band(ax, x, summary, name, label, style="-"):
    """Plot a run's mean with its 95% band (when there are several seeds)."""
    (line,) = ax.plot(x, summary[f"{name}_mean"], style, marker="o", ms=3, label=label)
    if summary["n_seeds"].max() > 1:
        ax.fill_between(
            x,
            summary[f"{name}_low"],
            summary[f"{name}_high"],
            color=line.get_color(),
            alpha=0.2,
            lw=0,
        )
    return line


def f1_per_iteration(summary: pd.DataFrame, words: dict):
    """Weighted F1 per iteration, test (solid) and validation (dashed)."""
    figure, ax = plt.subplots(figsize=(7, 3.6))
    for run, group in summary.groupby("run", sort=False):
        line = _band(
            ax,
            group["iteration"],
            group,
            "test_f1_weighted",
            f"{run} ({words['test']})",
        )
        ax.plot(
            group["iteration"],
            group["validation_f1_weighted_mean"],
            "--",
            color=line.get_color(),
            alpha=0.7,
            label=f"{run} ({words['validation']})",
        )
    ax.set_xlabel(words["iteration"])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(words["f1_weighted"])
    ax.legend(fontsize=7, ncol=2)
    return figure


def f1_vs_size(summary: pd.DataFrame, words: dict):
    """Test weighted F1 against the number of training images."""
    figure, ax = plt.subplots(figsize=(7, 3.6))
    for run, group in summary.groupby("run", sort=False):
        _band(ax, group["n_train_mean"], group, "test_f1_weighted", run)
    ax.set_xlabel(words["training_images"])
    ax.set_ylabel(f"{words['test_f1']} ({words['f1_weighted']})")
    ax.legend(fontsize=7)
    return figure


def time_vs_size(iterations: pd.DataFrame, timing: pd.DataFrame, words: dict):
    """Training seconds per epoch against training-set size, with the fitted line."""
    figure, ax = plt.subplots(figsize=(7, 3.6))
    for run, group in iterations.groupby("run", sort=False):
        points = ax.scatter(
            group["n_train"], group["seconds_per_epoch"], s=12, label=run
        )
        fit = timing[(timing["run"] == run) & (timing["y"] == "seconds_per_epoch")]
        if not fit.empty:
            fit = fit.iloc[0]
            x = np.linspace(group["n_train"].min(), group["n_train"].max(), 2)
            ax.plot(
                x,
                fit["intercept"] + fit["slope"] / 1000 * x,
                color=points.get_facecolor()[0],
                label=f"{fit['slope']:.2f} s / 1,000 ({words['r2']} {fit['r2']:.2f})",
            )
    ax.set_xlabel(words["training_images"])
    ax.set_ylabel(words["seconds_per_epoch"])
    ax.legend(fontsize=7)
    return figure


def pseudo_label_precision(summary: pd.DataFrame, words: dict):
    """Pseudo-label precision of each iteration's selection."""
    figure, ax = plt.subplots(figsize=(7, 3.2))
    for run, group in summary.groupby("run", sort=False):
        group = group.dropna(subset=["pseudo_label_precision_mean"])
        _band(ax, group["iteration"], group, "pseudo_label_precision", run)
    ax.set_xlabel(words["iteration"])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(words["precision"])
    ax.set_ylim(top=1.01)
    ax.legend(fontsize=7)
    return figure


def selection_mix(selections: pd.DataFrame, class_names: Sequence[str], words: dict):
    """Stacked share of each predicted class among the chosen pseudo-labels."""
    runs = list(dict.fromkeys(selections["run"])) or ["-"]
    figure, axes = plt.subplots(
        len(runs), 1, figsize=(7, 2.6 * len(runs) + 0.6), squeeze=False
    )
    colours = plt.get_cmap("tab10")(np.arange(len(class_names)))
    for ax, run in zip(axes[:, 0], runs, strict=True):
        counts = (
            selections[selections["run"] == run]
            .pivot_table(
                index="iteration",
                columns="class_index",
                values="n_selected",
                aggfunc="sum",
            )
            .reindex(columns=range(len(class_names)), fill_value=0)
            .fillna(0)
        )
        shares = counts.div(counts.sum(axis=1).replace(0, 1), axis=0)
        bottom = np.zeros(len(shares))
        for c, name in enumerate(class_names):
            ax.bar(shares.index, shares[c], bottom=bottom, color=colours[c], label=name)
            bottom += shares[c].to_numpy()
        ax.set_title(run, fontsize=9, loc="left")
        ax.set_ylabel(words["share"], fontsize=7)
        ax.set_ylim(0, 1)
        ax.grid(False)
    axes[-1, 0].set_xlabel(words["iteration"])
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend(fontsize=6, ncol=5, loc="lower left", bbox_to_anchor=(0, 1.12))
    return figure


def confusion_matrix(
    predictions: pd.DataFrame, class_names: Sequence[str], words: dict
):
    """Confusion matrix of the final classifier (rows: true, columns: predicted)."""
    n = len(class_names)
    matrix = np.zeros((n, n), dtype=int)
    np.add.at(matrix, (predictions["true_label"], predictions["predicted"]), 1)
    figure, ax = plt.subplots(figsize=(6.2, 5.4))
    ax.imshow(matrix, cmap="Blues")
    ax.grid(False)
    threshold = matrix.max() / 2
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            colour = "white" if value > threshold else "black"
            ax.text(j, i, value, ha="center", va="center", fontsize=6, color=colour)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel(words["predicted"])
    ax.set_ylabel(words["true"])
    return figure


def test_examples(
    predictions: pd.DataFrame,
    images: np.ndarray,
    class_names: Sequence[str],
    words: dict,
    n: int = 24,
):
    """A grid of test images with their predicted class; mistakes in red.

    Half the grid shows mistakes (when there are enough), so a reader sees
    what the classifier confuses as well as what it gets right.
    """
    wrong = predictions[predictions["predicted"] != predictions["true_label"]]
    right = predictions[predictions["predicted"] == predictions["true_label"]]
    shown = pd.concat([wrong.head(n // 2), right.head(n - min(len(wrong), n // 2))])
    shown = shown.sort_values("test_index")
    columns = 8
    rows = max(1, int(np.ceil(len(shown) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(8, 1.25 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (_, row) in zip(axes.ravel(), shown.iterrows(), strict=False):
        ax.imshow(images[int(row["test_index"])], cmap="gray_r")
        mistake = row["predicted"] != row["true_label"]
        label = class_names[int(row["predicted"])]
        if mistake:
            label += (
                f"\n({words['true'].lower()}: {class_names[int(row['true_label'])]})"
            )
        ax.set_title(label, fontsize=6, color="#c0392b" if mistake else "black")
    return figure


def draw_all(
    tables: dict[str, pd.DataFrame],
    test_images: np.ndarray,
    folder: str | os.PathLike,
    language: str = "en",
) -> list[Path]:
    """Draw and save every figure of the report.

    Parameters
    ----------
    tables : dict of pandas.DataFrame
        ``iterations``, ``summary``, ``selections``, ``timing`` and
        ``final_predictions``.
    test_images : numpy.ndarray
        The official test images, indexed by ``final_predictions.test_index``.
    folder : path-like
        Where ``{name}.svg`` and ``{name}.png`` go.
    language : {"en", "es"}

    Returns
    -------
    list of Path
        The files written.
    """
    words, names = text.words(language), text.class_names(language)
    predictions = tables["final_predictions"]
    draw = {
        "f1_per_iteration": lambda: f1_per_iteration(tables["summary"], words),
        "f1_vs_size": lambda: f1_vs_size(tables["summary"], words),
        "time_vs_size": lambda: time_vs_size(
            tables["iterations"], tables["timing"], words
        ),
        "pseudo_label_precision": lambda: pseudo_label_precision(
            tables["summary"], words
        ),
        "selection_mix": lambda: selection_mix(tables["selections"], names, words),
        "confusion_matrix": lambda: confusion_matrix(predictions, names, words),
        "test_examples": lambda: test_examples(predictions, test_images, names, words),
    }
    written = []
    for name in FIGURES:
        written += save(draw[name](), folder, name)
    return written
