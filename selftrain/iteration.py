"""One self-training iteration: the unit of work of one workflow job.

Iteration ``i`` trains on the labelled set plus every pseudo-label chosen by
iterations ``0 .. i-1``, evaluates on the validation and test sets, scores the
rest of the pool and chooses the next pseudo-labels. It reads only the split
and the previous iteration's outputs, and writes every output through a
temporary name, so an interrupted job never leaves a file that looks finished.

Besides the selection strategies of :mod:`selftrain.selection`, a run can be
one of the study's reference points:

``none``
    The supervised control: trains the same number of rounds on the labelled
    set alone, so a gain from self-training is not just more epochs.
``oracle``
    Adds exactly the images another run (``follow``) chose, with their true
    labels: the ceiling of that run, and the cost of its label noise.
``upper_bound``
    Trains once on the labelled set and the whole pool with true labels.

With ``relabel: true`` the pseudo-labels are not kept from round to round:
each iteration's model labels the whole pool afresh and the ``k * (i + 1)``
most confident images form the next round's pseudo-labelled set.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from selftrain import data, model, selection
from selftrain.atomic import replacing, write_csv, write_json
from selftrain.metrics import classification_scores
from selftrain.study import ConfigError

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
    followed: Path | None = None  # the followed run's selected.csv (oracle)

    @classmethod
    def in_folder(
        cls, folder, split, dataset, previous=None, followed=None
    ) -> IterationPaths:
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
            followed=None if followed is None else Path(followed),
        )


def nothing_selected() -> pd.DataFrame:
    """An empty selection, with its columns."""
    return pd.DataFrame(columns=PSEUDO_LABEL_COLUMNS)


def previous_pseudo_labels(paths: IterationPaths, config_hash: str) -> pd.DataFrame:
    """Return every pseudo-label chosen before this iteration.

    Raises
    ------
    ConfigError
        When the previous iteration was computed under another config: its
        checkpoint belongs to a different study.
    """
    if paths.previous is None:
        return nothing_selected().assign(iteration=0)
    previous = json.loads((paths.previous / "metrics.json").read_text())
    if config_hash and previous.get("config_hash") != config_hash:
        raise ConfigError(
            f"{paths.previous} was computed with config hash "
            f"{previous.get('config_hash')}, but this chain's is {config_hash}: "
            "it belongs to another study. Delete that chain's folder to compute "
            "it again, or restore the config it was made with."
        )
    return pd.read_csv(paths.previous / "pseudo_labels.csv")


def training_set(dataset, split, pseudo, settings) -> tuple[np.ndarray, np.ndarray]:
    """Return the training images' indices and labels for this iteration."""
    if settings["strategy"] == "upper_bound":
        index = np.concatenate([split.labeled, split.pool])
        return index, dataset.train_labels[index]
    index = np.concatenate([split.labeled, pseudo["pool_index"].to_numpy(int)])
    labels = np.concatenate(
        [dataset.train_labels[split.labeled], pseudo["pseudo_label"].to_numpy(int)]
    )
    return index, labels


def fit(paths, settings, dataset, split, train_index, train_labels, seed=0):
    """Build (or warm-start) and train the model; return it, epochs, seconds.

    A warm-started model trains for at most ``warm_epochs`` from
    ``warm_learning_rate`` (``max_epochs`` and ``learning_rate`` where those
    are null); a new one for at most ``max_epochs`` from ``learning_rate``.
    """
    budget, rate = settings["max_epochs"], settings["learning_rate"]
    if settings["warm_start"] and paths.previous is not None:
        net = model.load(paths.previous / "model.keras")
        budget = settings.get("warm_epochs") or budget
        rate = settings.get("warm_learning_rate") or rate
        log.info("warm start from %s", paths.previous / "model.keras")
    else:
        net = model.build(settings["architecture"], settings["learning_rate"])
    tic = time.perf_counter()
    epochs = model.train(
        net,
        dataset.train_images[train_index],
        train_labels,
        (
            dataset.train_images[split.validation],
            dataset.train_labels[split.validation],
        ),
        budget,
        settings["patience"],
        settings["batch_size"],
        augment=settings.get("augment", False),
        schedule=settings.get("schedule", "constant"),
        learning_rate=rate,
        seed=seed,
    )
    seconds = time.perf_counter() - tic
    log.info(
        "trained %d of at most %d epochs in %.1f s (%.0f images/s)",
        epochs,
        budget,
        seconds,
        epochs * len(train_index) / seconds,
    )
    return net, epochs, seconds


def evaluate(net, dataset, split) -> tuple[dict, dict, float]:
    """Score on validation (for choices) and test (for reporting only)."""
    tic = time.perf_counter()
    scores, probabilities = {}, {}
    sets = {
        "validation": (split.validation, dataset.train_images, dataset.train_labels),
        "test": (split.test, dataset.test_images, dataset.test_labels),
    }
    for name, (index, images, labels) in sets.items():
        probabilities[name] = model.predict_proba(net, images[index])
        scores[name] = classification_scores(
            labels[index], probabilities[name].argmax(axis=1)
        )
    seconds = time.perf_counter() - tic
    log.info(
        "F1 weighted: validation %.4f, test %.4f (%.1f s)",
        scores["validation"]["f1_weighted"],
        scores["test"]["f1_weighted"],
        seconds,
    )
    return scores, probabilities, seconds


def score_and_select(net, dataset, candidates, k, settings, seed):
    """Score pool images and choose ``k`` of them by the run's strategy."""
    tic = time.perf_counter()
    probabilities = model.predict_proba(
        net, dataset.train_images[candidates], mc_passes=settings["mc_passes"]
    )
    seconds = time.perf_counter() - tic
    rows = selection.select(probabilities, k, settings["strategy"], seed)
    if len(rows) < k:
        log.info("k is %d but only %d pool images are left: taking all", k, len(rows))
    chosen = pd.DataFrame(
        {
            "pool_index": candidates[rows],
            "pseudo_label": probabilities[rows].argmax(axis=1),
            "entropy": selection.entropy(probabilities[rows]),
            "true_label": dataset.train_labels[candidates[rows]],
        }
    )
    log.info(
        "scored %d pool images (%d passes) in %.1f s; chose %d by %s",
        len(candidates),
        settings["mc_passes"],
        seconds,
        len(chosen),
        settings["strategy"],
    )
    return chosen, seconds


def follow(paths, dataset) -> pd.DataFrame:
    """The followed run's choice at this iteration, with the true labels."""
    chosen = pd.read_csv(paths.followed)[PSEUDO_LABEL_COLUMNS]
    chosen["pseudo_label"] = dataset.train_labels[chosen["pool_index"].to_numpy(int)]
    log.info("oracle: %d images chosen by %s, true labels", len(chosen), paths.followed)
    return chosen


def choose_next(net, paths, dataset, split, pseudo, settings, iteration, seed):
    """Choose the next round's pseudo-labels.

    Returns
    -------
    selected : pandas.DataFrame
        The images labelled in this iteration.
    cumulative : pandas.DataFrame
        The pseudo-labelled set the next iteration trains on.
    seconds : float
        Time spent scoring the pool.
    """
    strategy, seconds = settings["strategy"], 0.0
    if strategy in ("none", "upper_bound"):
        selected = nothing_selected()
    elif strategy == "oracle":
        selected = follow(paths, dataset)
    elif settings["relabel"]:
        k = settings["k"] * (iteration + 1)
        selected, seconds = score_and_select(
            net, dataset, split.pool, k, settings, seed
        )
    else:
        remaining = np.setdiff1d(split.pool, pseudo["pool_index"].to_numpy(int))
        if len(remaining) == 0:
            log.info("the pool is empty: the chain ends here")
            selected = nothing_selected()
        else:
            selected, seconds = score_and_select(
                net, dataset, remaining, settings["k"], settings, seed
            )

    selected = selected.assign(iteration=iteration)
    if settings["relabel"]:
        return selected, selected, seconds
    return selected, pd.concat([pseudo, selected], ignore_index=True), seconds


def run(
    paths: IterationPaths,
    run_name: str,
    iteration: int,
    settings: dict,
    seed: int,
    select_next: bool,
    threads: int = 1,
    config_hash: str = "",
    dataset: data.Dataset | None = None,
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
        ``strategy``, ``k``, ``mc_passes``, ``warm_start``, ``relabel``,
        ``max_epochs``, ``warm_epochs``, ``patience``, ``batch_size``,
        ``learning_rate``, ``warm_learning_rate``, ``schedule``, ``augment``,
        ``precision``, ``determinism``.
    seed : int
        The chain's seed; with ``iteration`` it seeds this job.
    select_next : bool
        Whether to choose pseudo-labels for a next iteration (false for the
        last iteration of a chain).
    threads : int
        Threads TensorFlow may use.
    config_hash : str
        Identifies the study; a previous iteration with another hash is refused.
    dataset : Dataset, optional
        The dataset, already read; read from ``paths.dataset`` when omitted.

    Returns
    -------
    dict
        The metrics also written to ``paths.metrics``.
    """
    started = time.perf_counter()
    job_seed = seed * 1000 + iteration
    pseudo = previous_pseudo_labels(paths, config_hash)
    runtime = model.configure(
        threads, settings["precision"], job_seed, settings["determinism"]
    )
    log.info("TensorFlow on %(device)s, %(precision)s, %(threads)d threads", runtime)

    # Assemble the training set: labelled images plus pseudo-labels so far.
    dataset = dataset or data.load(paths.dataset)
    split = data.Split.load(paths.split)
    train_index, train_labels = training_set(dataset, split, pseudo, settings)
    log.info(
        "iteration %d: %d labelled + %d others = %d training images",
        iteration,
        len(split.labeled),
        len(train_index) - len(split.labeled),
        len(train_index),
    )

    # Train, evaluate, and choose the next pseudo-labels.
    net, epochs, seconds_train = fit(
        paths, settings, dataset, split, train_index, train_labels, job_seed
    )
    scores, probabilities, seconds_evaluate = evaluate(net, dataset, split)
    if select_next:
        selected, cumulative, seconds_score = choose_next(
            net, paths, dataset, split, pseudo, settings, iteration, job_seed
        )
    else:
        log.info("last iteration of the chain: nothing more to select")
        selected = nothing_selected().assign(iteration=iteration)
        cumulative, seconds_score = pseudo, 0.0
    precision = (
        float((selected["pseudo_label"] == selected["true_label"]).mean())
        if len(selected)
        else None
    )
    if precision is not None:
        log.info("pseudo-label precision of the selection: %.3f", precision)

    # Write the checkpoint: pseudo-labels, predictions, model, and metrics last.
    write_csv(selected, paths.selected)
    write_csv(cumulative, paths.pseudo_labels)
    with replacing(paths.predictions) as tmp:
        np.savez_compressed(tmp, **probabilities)
    model.save(net, paths.model)
    metrics = {
        "run": run_name,
        "iteration": iteration,
        "seed": seed,
        "strategy": settings["strategy"],
        "config_hash": config_hash,
        "n_labeled": len(split.labeled),
        "n_pseudo_labels": len(pseudo),
        "n_train": len(train_index),
        "n_selected": len(selected),
        "n_pool_remaining": int(len(split.pool) - len(cumulative)),
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
