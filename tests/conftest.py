"""Shared fixtures: the real dataset and a tiny run of the real workflow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from selftrain import data

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture(scope="session")
def dataset_dir() -> Path:
    """The folder of the real Fashion-MNIST files (never downloaded here)."""
    return data.locate(fetch=False)


@pytest.fixture(scope="session")
def fashion(dataset_dir) -> data.Dataset:
    return data.load(dataset_dir)


def snakemake(workdir: Path, *args: str, check: bool = True):
    """Run the project's workflow in ``workdir`` and return the finished process."""
    result = subprocess.run(
        [*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), *args],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory) -> Path:
    """A finished run of the workflow on the tiny config; returns its folder."""
    workdir = tmp_path_factory.mktemp("tiny")
    shutil.copy(ROOT / "tests" / "configs" / "tiny.yaml", workdir / "config.yaml")
    snakemake(workdir, "--cores", "2")
    return workdir
