"""One self-training iteration: the unit of work of one workflow job.

Iteration ``i`` trains on the labelled set plus every pseudo-label chosen by
iterations ``0 .. i-1``, evaluates on the validation and test sets, scores the
rest of the pool and chooses the next pseudo-labels. It reads only the split
and the previous iteration's outputs, and writes every output through a
temporary name, so an interrupted job never leaves a file that looks finished.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from selftrain import data, model, selection
from selftrain.atomic import replacing, write_csv, write_json
from selftrain.metrics import classification_scores

log = logging.getLogger(__name__)

PSEUDO_LABEL_COLUMNS = ["pool_index", "pseudo_label", "entropy", "true_label"]


@dataclass(frozen=True)
class IterationPaths:
    """Where an iteration reads its inputs and writes its outputs."""

    split: Path
    dataset: Path
    model: Path
    selected: Path
    pseudo_labels: Path
    metrics: Path
    predictions: Path
    previous: Path | None = None  # the previous iteration's folder

    @classmethod
    def in_folder(cls, folder, split, dataset, previous=None) -> IterationPaths:
        """Paths of the standard layout: ``folder/{model.keras,...}``."""
        folder = Path(folder)
        return cls(
            split=Path(split),
            dataset=Path(dataset),
            model=folder / "model.keras",
            selected=folder / "selected.csv",
            pseudo_labels=folder / "pseudo_labels.csv",
            metrics=folder / "metrics.json",
            predictions=folder / "predictions.npz",
            previous=None if previous is None else Path(previous),
        )


def previous_pseudo_labels(paths: IterationPaths) -> pd.DataFrame:
    """Return every pseudo-label chosen before this iteration."""
    if paths.previous is None:
        return pd.DataFrame(columns=[*PSEUDO_LABEL_COLUMNS, "iteration"])
    return pd.read_csv(paths.previous / "pseudo_labels.csv")


def run(
    paths: IterationPaths,
    run_name: str,
    iteration: int,
    settings: dict,
    seed: int,
    select_next: bool,
    threads: int = 1,
    config_hash: str = "",
) -> dict:
    """Run one iteration and write its model, selections and metrics.

    Parameters
    ----------
    paths : IterationPaths
    run_name : str
        The run (named strategy and settings) this chain belongs to.
    iteration : int
        0 for the supervised start of a chain.
    settings : dict
        The run's settings (see ``config.yaml``): ``architecture``,
        ``strategy``, ``k``, ``mc_passes``, ``warm_start``, ``max_epochs``,
        ``patience``, ``batch_size``, ``learning_rate``, ``precision``,
        ``determinism``.
    seed : int
        The chain's seed; with ``iteration`` it seeds this job.
    select_next : bool
        Whether to choose pseudo-labels for a next iteration (false for the
        last iteration of a chain).
    threads : int
        Threads TensorFlow may use.
    config_hash : str
        Identifies the study; stored in the metrics.

    Returns
    -------
    dict
        The metrics also written to ``paths.metrics``.
    """
    started = time.perf_counter()
    runtime = model.configure(
        threads,
        settings["precision"],
        seed=seed * 1000 + iteration,
        determinism=settings["determinism"],
    )
    log.info("TensorFlow on %(device)s, %(precision)s, %(threads)d threads", runtime)

    # Assemble the training set: labelled images plus pseudo-labels so far.
    dataset = data.load(paths.dataset)
    split = data.Split.load(paths.split)
    pseudo = previous_pseudo_labels(paths)
    train_index = np.concatenate([split.labeled, pseudo["pool_index"].to_numpy(int)])
    train_labels = np.concatenate(
        [dataset.train_labels[split.labeled], pseudo["pseudo_label"].to_numpy(int)]
    )
    log.info(
        "iteration %d: %d labelled + %d pseudo-labelled = %d training images",
        iteration,
        len(split.labeled),
        len(pseudo),
        len(train_index),
    )

    # Train, from the previous model when warm-starting.
    if settings["warm_start"] and paths.previous is not None:
        net = model.load(paths.previous / "model.keras")
        log.info("warm start from %s", paths.previous / "model.keras")
    else:
        net = model.build(settings["architecture"], settings["learning_rate"])
    validation = (
        dataset.train_images[split.validation],
        dataset.train_labels[split.validation],
    )
    tic = time.perf_counter()
    epochs = model.train(
        net,
        dataset.train_images[train_index],
        train_labels,
        validation,
        settings["max_epochs"],
        settings["patience"],
        settings["batch_size"],
    )
    seconds_train = time.perf_counter() - tic
    log.info(
        "trained %d epochs in %.1f s (%.0f images/s)",
        epochs,
        seconds_train,
        epochs * len(train_index) / seconds_train,
    )

    # Evaluate on validation (for choices) and test (for reporting only).
    tic = time.perf_counter()
    scores, probabilities = {}, {}
    for name, images, labels in (
        ("validation", *validation),
        ("test", dataset.test_images[split.test], dataset.test_labels[split.test]),
    ):
        probabilities[name] = model.predict_proba(net, images)
        scores[name] = classification_scores(labels, probabilities[name].argmax(axis=1))
    seconds_evaluate = time.perf_counter() - tic
    log.info(
        "F1 weighted: validation %.4f, test %.4f (%.1f s)",
        scores["validation"]["f1_weighted"],
        scores["test"]["f1_weighted"],
        seconds_evaluate,
    )

    # Score what is left of the pool and choose the next pseudo-labels.
    remaining = np.setdiff1d(split.pool, pseudo["pool_index"].to_numpy(int))
    selected = pd.DataFrame(columns=PSEUDO_LABEL_COLUMNS)
    seconds_score = 0.0
    if not select_next:
        log.info("last iteration of the chain: nothing more to select")
    elif len(remaining) == 0:
        log.info("the pool is empty: the chain ends here")
    else:
        selected, seconds_score = choose(
            net, dataset, remaining, settings, seed * 1000 + iteration
        )
    precision = (
        float((selected["pseudo_label"] == selected["true_label"]).mean())
        if len(selected)
        else None
    )

    # Write the checkpoint: pseudo-labels, predictions, model, and metrics last.
    selected = selected.assign(iteration=iteration)
    write_csv(selected, paths.selected)
    write_csv(pd.concat([pseudo, selected], ignore_index=True), paths.pseudo_labels)
    with replacing(paths.predictions) as tmp:
        np.savez_compressed(tmp, **probabilities)
    model.save(net, paths.model)
    metrics = {
        "run": run_name,
        "iteration": iteration,
        "seed": seed,
        "config_hash": config_hash,
        "n_labeled": len(split.labeled),
        "n_pseudo_labels": len(pseudo),
        "n_train": len(train_index),
        "n_selected": len(selected),
        "n_pool_remaining": int(len(remaining) - len(selected)),
        "pseudo_label_precision": precision,
        "epochs": epochs,
        "seconds_train": seconds_train,
        "seconds_evaluate": seconds_evaluate,
        "seconds_score": seconds_score,
        "seconds_total": time.perf_counter() - started,
        **runtime,
        "model": model.describe(net),
        "validation": scores["validation"],
        "test": scores["test"],
    }
    write_json(metrics, paths.metrics)
    return metrics


def choose(net, dataset, remaining, settings, seed) -> tuple[pd.DataFrame, float]:
    """Score the remaining pool images and choose the next pseudo-labels."""
    tic = time.perf_counter()
    probabilities = model.predict_proba(
        net, dataset.train_images[remaining], mc_passes=settings["mc_passes"]
    )
    seconds = time.perf_counter() - tic
    rows = selection.select(probabilities, settings["k"], settings["strategy"], seed)
    if len(rows) < settings["k"]:
        log.info(
            "k is %d but only %d pool images are left: taking all of them",
            settings["k"],
            len(rows),
        )
    chosen = pd.DataFrame(
        {
            "pool_index": remaining[rows],
            "pseudo_label": probabilities[rows].argmax(axis=1),
            "entropy": selection.entropy(probabilities[rows]),
            "true_label": dataset.train_labels[remaining[rows]],
        }
    )
    log.info(
        "scored %d pool images (%d passes) in %.1f s; chose %d by %s, "
        "pseudo-label precision %.3f",
        len(remaining),
        settings["mc_passes"],
        seconds,
        len(chosen),
        settings["strategy"],
        (chosen["pseudo_label"] == chosen["true_label"]).mean(),
    )
    return chosen, seconds
