"""The study's configuration: per-run settings, planned iterations, checks.

The JSON schema in ``workflow/schemas/`` checks types, ranges and fills
defaults; this module checks what a schema cannot (sizes that must fit the
dataset) and derives what the workflow plans from the config.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

from selftrain.data import check_split_sizes

# Where each iteration's checkpoint lives, relative to the working directory.
CHECKPOINT_PATTERN = "results/runs/{run}/seed{seed}/iter{iteration}"


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
    the pool would already be empty. An upper bound is a single iteration;
    an oracle run is as long as the run it follows.
    """
    settings = run_settings(config, run)
    if settings["strategy"] == "upper_bound":
        return 0
    if settings["strategy"] == "oracle":
        return planned_iterations(config, settings["follow"])
    if settings["strategy"] == "none" or settings["relabel"]:
        return settings["iterations"]
    return min(settings["iterations"], math.ceil(pool_size(config) / settings["k"]))


def check_runs(config: dict) -> None:
    """Check that every oracle run follows a run that chooses images."""
    for run, settings in config["runs"].items():
        if settings["strategy"] != "oracle":
            continue
        followed = settings.get("follow")
        if followed not in config["runs"]:
            raise ConfigError(
                f"run {run!r} is an oracle and must follow another run: set "
                f"runs.{run}.follow to one of {', '.join(sorted(config['runs']))}."
            )
        if config["runs"][followed]["strategy"] in ("none", "oracle", "upper_bound"):
            raise ConfigError(
                f"run {run!r} follows {followed!r}, which chooses no pool images; "
                "follow a run with a selection strategy."
            )


def validate(config: dict, schema_path: str | os.PathLike) -> None:
    """Check ``config`` against the schema and fill in its defaults, in place.

    Raises
    ------
    ConfigError
        For the first bad value: where it is, what is wrong, and what to do.
    """
    import jsonschema
    import yaml
    from snakemake.utils import validate as fill_defaults

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "the config"
        raise ConfigError(
            f"config value {where} is wrong: {error.message}. Change it in "
            "config.yaml (or in --config on the command line); "
            f"{Path(schema_path).name} lists every key, its default and range."
        )
    fill_defaults(config, str(schema_path))
    pool_size(config)
    check_runs(config)


def config_hash(config: dict, run: str) -> str:
    """Return a short hash of everything that decides a run's results.

    Two chains with the same hash compute the same thing, so a checkpoint
    with another hash belongs to a different study.
    """
    decisive = {"data": config["data"], "settings": run_settings(config, run)}
    decisive["data"] = {k: v for k, v in decisive["data"].items() if k != "dir"}
    text = json.dumps(decisive, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# The modules whose code decides what an iteration computes.
ITERATION_MODULES = ("data", "model", "selection", "iteration", "metrics")


def code_hash(paths: list[str | os.PathLike] | None = None) -> str:
    """Return a short hash of the code that computes an iteration.

    Comments, docstrings and layout are left out, so editing documentation
    does not invalidate trained models; any change to what the code does
    changes the hash. The workflow passes it to every iteration as a param,
    so Snakemake reruns iterations whose code changed.

    Parameters
    ----------
    paths : list of path-like, optional
        Python files to hash; by default ``ITERATION_MODULES`` of this package.

    Returns
    -------
    str
        Twelve hexadecimal digits.
    """
    if paths is None:
        package = Path(__file__).parent
        paths = [package / f"{name}.py" for name in ITERATION_MODULES]
    digest = hashlib.sha256()
    for path in paths:
        tree = ast.parse(Path(path).read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(body, list)
                and body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
        digest.update(ast.dump(tree).encode())
    return digest.hexdigest()[:12]


def check_writable(folder: str | os.PathLike = "results") -> None:
    """Check that the study can write its results before any job starts.

    Raises
    ------
    ConfigError
        When ``folder`` (or, if it does not exist yet, the folder that would
        hold it) is not writable.
    """
    folder = Path(folder).resolve()
    existing = folder if folder.exists() else folder.parent
    # Try it: permission bits do not tell for root or read-only file systems.
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(
            f"{existing} is not writable ({error.strerror}), so the study cannot "
            "save its results; make it writable or run from another folder. "
            "Nothing was computed or changed."
        ) from None
