"""The study's configuration: per-run settings, planned iterations, checks.

The JSON schema in ``workflow/schemas/`` checks types, ranges and fills
defaults; this module checks what a schema cannot (sizes that must fit the
dataset) and derives what the workflow plans from the config.
"""

from __future__ import annotations

import hashlib
import json
import math

from selftrain.data import check_split_sizes

TRAINING_KEYS = ("max_epochs", "patience", "batch_size", "learning_rate")


class ConfigError(ValueError):
    """The config asks for something that cannot be run."""


def run_settings(config: dict, run: str) -> dict:
    """Return every setting of one run: its own keys over the ``training`` ones.

    Raises
    ------
    ConfigError
        When ``run`` is not a run of the config.
    """
    runs = config["runs"]
    if run not in runs:
        raise ConfigError(
            f"unknown run {run!r}; the config defines {', '.join(sorted(runs))}."
        )
    return {**config["training"], **runs[run]}


def pool_size(config: dict) -> int:
    """Return the number of unlabelled pool images the split will have."""
    data = config["data"]
    try:
        return check_split_sizes(
            data["labeled_per_class"],
            data["validation_per_class"],
            data.get("pool_size"),
            data.get("test_size"),
        )
    except ValueError as error:
        raise ConfigError(f"impossible split: {error}") from None


def planned_iterations(config: dict, run: str) -> int:
    """Return the last iteration of a run's chain.

    Iteration 0 trains on labelled data alone; each of ``iterations`` later
    ones adds up to ``k`` pseudo-labels. A chain stops early, cleanly, when
    the pool would already be empty.
    """
    settings = run_settings(config, run)
    return min(settings["iterations"], math.ceil(pool_size(config) / settings["k"]))


def check(config: dict) -> None:
    """Check what the schema cannot; raise ConfigError naming the fix."""
    pool_size(config)
    if not config["runs"]:
        raise ConfigError("the config defines no runs; add one under `runs:`.")


def config_hash(config: dict, run: str) -> str:
    """Return a short hash of everything that decides a run's results.

    Two chains with the same hash compute the same thing, so a checkpoint
    with another hash belongs to a different study.
    """
    decisive = {"data": config["data"], "settings": run_settings(config, run)}
    decisive["data"] = {k: v for k, v in decisive["data"].items() if k != "dir"}
    text = json.dumps(decisive, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
