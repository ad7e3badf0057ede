"""The final classifier as a self-describing folder: model plus metadata.

``results/final/`` holds ``model.keras`` and ``classifier.json``. The JSON
names the classes, the preprocessing the model was trained with, and the
entropy above which a prediction is marked uncertain, so a program that
classifies new images never has to guess any of them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from selftrain import atomic
from selftrain.data import CLASS_NAMES, IMAGE_SHAPE, Dataset, Split
from selftrain.selection import entropy

FORMAT = "selftrain-classifier/1"
MODEL_FILE = "model.keras"
METADATA_FILE = "classifier.json"
# Share of correctly classified validation images that stay below the
# uncertainty threshold.
CONFIDENT_QUANTILE = 0.95

PREPROCESSING = {
    "height": IMAGE_SHAPE[0],
    "width": IMAGE_SHAPE[1],
    "channels": 1,
    "foreground": "light",  # items are light on a black background
    "scale": 1 / 255,  # uint8 grey levels to [0, 1]
}


class ClassifierError(ValueError):
    """A folder or file is not a classifier exported by selftrain."""


def uncertainty_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Return the entropy above which a prediction counts as uncertain.

    It is the ``CONFIDENT_QUANTILE`` quantile of the entropies of the
    validation images the model classifies correctly.
    """
    correct = probabilities.argmax(axis=1) == labels
    if not correct.any():
        return float(np.log(probabilities.shape[1]))
    return float(np.quantile(entropy(probabilities[correct]), CONFIDENT_QUANTILE))


def export(
    model_path: str | os.PathLike,
    folder: str | os.PathLike,
    validation_probabilities: np.ndarray,
    validation_labels: np.ndarray,
    source: dict,
) -> Path:
    """Write the classifier folder.

    Parameters
    ----------
    model_path : path-like
        The chosen iteration's ``model.keras``.
    folder : path-like
        Where to write ``model.keras`` and ``classifier.json``.
    validation_probabilities, validation_labels : numpy.ndarray
        The model's probabilities on the validation set and the true labels,
        to set the uncertainty threshold.
    source : dict
        Where the model comes from (run, seed, iteration, scores); stored as is.

    Returns
    -------
    Path
        The metadata file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(folder / MODEL_FILE) as tmp:
        shutil.copyfile(model_path, tmp)
    metadata = {
        "format": FORMAT,
        "class_names": list(CLASS_NAMES),
        "preprocessing": PREPROCESSING,
        "uncertain_entropy": uncertainty_threshold(
            validation_probabilities, validation_labels
        ),
        "source": source,
    }
    atomic.write_json(metadata, folder / METADATA_FILE)
    return folder / METADATA_FILE


def read_metadata(model: str | os.PathLike) -> tuple[Path, dict]:
    """Return the model file and metadata of an exported classifier.

    Parameters
    ----------
    model : path-like
        The classifier folder, or the ``model.keras`` inside it.

    Raises
    ------
    ClassifierError
        When the path is not a classifier folder written by :func:`export`.
    """
    model = Path(model)
    folder = model if model.is_dir() else model.parent
    metadata_path = folder / METADATA_FILE
    try:
        metadata = json.loads(metadata_path.read_text())
    except FileNotFoundError:
        raise ClassifierError(
            f"{model}: not a selftrain classifier ({METADATA_FILE} is missing "
            "beside the model)."
        ) from None
    except (OSError, ValueError) as error:
        raise ClassifierError(f"{metadata_path}: unreadable ({error}).") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ClassifierError(
            f"{metadata_path}: not a selftrain classifier (format is not {FORMAT})."
        )
    model_file = folder / MODEL_FILE
    if not model_file.is_file():
        raise ClassifierError(f"{model_file}: the model file is missing.")
    return model_file, metadata


def export_final(
    chosen: pd.Series,
    checkpoint_pattern: str,
    dataset: Dataset,
    split: Split,
    folder: str | os.PathLike,
    predictions_path: str | os.PathLike,
) -> pd.Series:
    """Export a chosen iteration's model and write its test predictions.

    Parameters
    ----------
    chosen : pandas.Series
        The chosen row of the iteration table (see
        ``selftrain.report.tables.choose_final``).
    checkpoint_pattern : str
        Folder of an iteration, with ``{run}``, ``{seed}`` and ``{iteration}``.
    dataset : Dataset
    split : Split
        The chosen seed's split.
    folder : path-like
        Where the classifier goes (``results/final``).
    predictions_path : path-like
        Where its test predictions go, one row per test image.

    Returns
    -------
    Path
        The classifier's metadata file.
    """
    checkpoint = Path(
        checkpoint_pattern.format(
            run=chosen["run"], seed=chosen["seed"], iteration=chosen["iteration"]
        )
    )
    with np.load(checkpoint / "predictions.npz") as f:
        validation, test = f["validation"], f["test"]
    source = {
        "run": str(chosen["run"]),
        "seed": int(chosen["seed"]),
        "iteration": int(chosen["iteration"]),
        "config_hash": str(chosen["config_hash"]),
        "n_train": int(chosen["n_train"]),
        "validation_f1_weighted": float(chosen["validation_f1_weighted"]),
        "test_f1_weighted": float(chosen["test_f1_weighted"]),
    }
    metadata = export(
        checkpoint / MODEL_FILE,
        folder,
        validation,
        dataset.train_labels[split.validation],
        source,
    )
    predictions = pd.DataFrame(
        {
            "test_index": split.test,
            "true_label": dataset.test_labels[split.test],
            "predicted": test.argmax(axis=1),
            "confidence": test.max(axis=1),
            "entropy": entropy(test),
        }
    )
    atomic.write_csv(predictions, predictions_path)
    return metadata
