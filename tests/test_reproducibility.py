"""Reproducibility, resumption after a crash, and no use of the test set."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from selftrain import atomic, data, iteration, provenance, study
from selftrain.report import tables

from .conftest import ROOT, SNAKEMAKE

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("good")
    with pytest.raises(RuntimeError), atomic.replacing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "good"
    assert list(tmp_path.iterdir()) == [target]


def test_environment_yml_and_pyproject_name_the_same_packages():
    pip, conda = provenance.declared_packages(ROOT)
    assert "tensorflow" in pip and "weasyprint" in pip
    assert conda == pip
    assert "the same" in provenance.environment_check(ROOT)


@pytest.fixture(scope="module")
def leakage_inputs(tmp_path_factory, fashion):
    folder = tmp_path_factory.mktemp("leakage")
    split = data.make_split(
        fashion.train_labels, 10000, 20, 10, seed=0, pool_size=300, test_size=500
    )
    split.save(folder / "split.npz")
    config = {
        "training": {"max_epochs": 1, "determinism": True},
        "runs": {"r": {"k": 30, "mc_passes": 2}},
    }
    study.validate(config, SCHEMA)
    return folder / "split.npz", study.run_settings(config, "r")


def run_iteration_zero(out, split, settings, dataset):
    paths = iteration.IterationPaths.in_folder(out, split=split, dataset=Path("unused"))
    return iteration.run(
        paths, "r", 0, settings, seed=0, select_next=True, dataset=dataset
    )


def test_shuffled_test_labels_change_no_choice(leakage_inputs, fashion, tmp_path):
    split, settings = leakage_inputs
    shuffled = replace(
        fashion,
        test_labels=np.random.default_rng(1).permutation(fashion.test_labels),
    )
    results = {}
    for name, dataset in (("real", fashion), ("shuffled", shuffled)):
        (tmp_path / name).mkdir()
        metrics = run_iteration_zero(tmp_path / name, split, settings, dataset)
        selected = pd.read_csv(tmp_path / name / "selected.csv")
        results[name] = (metrics, selected)

    (real, chosen), (fake, chosen_fake) = results["real"], results["shuffled"]
    pd.testing.assert_frame_equal(chosen, chosen_fake)
    assert real["validation"] == fake["validation"]
    assert real["test"]["f1_weighted"] != fake["test"]["f1_weighted"]

    table = tables.iteration_table([{**real, "run": "a"}, {**fake, "run": "b"}])
    flipped = table.assign(test_f1_weighted=table["test_f1_weighted"][::-1].values)
    assert tables.choose_final(table)["run"] == tables.choose_final(flipped)["run"]


def tiny_deterministic_study(folder: Path) -> Path:
    folder.mkdir()
    config = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    config["runs"] = {"course": config["runs"]["course"]}
    config["training"]["determinism"] = True
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def run_to_table(folder: Path, *extra: str):
    return subprocess.run(
        [*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), "--cores", "2"]
        + list(extra)
        + ["results/tables/iterations.csv"],
        cwd=folder,
        capture_output=True,
        text=True,
    )


def chain_outputs(folder: Path) -> dict:
    """Selections and scores of every iteration, without the timings."""
    outputs = {}
    for path in sorted((folder / "results" / "runs").rglob("metrics.json")):
        metrics = json.loads(path.read_text())
        scores = {k: metrics[k] for k in ("n_train", "validation", "test", "epochs")}
        selected = (path.parent / "selected.csv").read_text()
        outputs[str(path.relative_to(folder))] = (scores, selected)
    return outputs


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """Outputs of the deterministic tiny chain, run without interruption."""
    reference = tiny_deterministic_study(tmp_path_factory.mktemp("ref") / "study")
    assert run_to_table(reference).returncode == 0
    return chain_outputs(reference)


ITER1 = Path("results", "runs", "course", "seed0", "iter1")


def training_iteration_1(folder: Path) -> bool:
    log = folder / "logs" / "run_iteration" / "course" / "seed0" / "iter1.log"
    return log.exists() and "warm start from" in log.read_text()


def writing_iteration_1(folder: Path) -> bool:
    """Some of iteration 1's outputs are in place, its metrics not yet."""
    return (folder / ITER1 / "selected.csv").exists()


def kill_at(moment, folder: Path) -> None:
    """Run the workflow in ``folder`` and SIGKILL it all once ``moment`` holds."""
    process = subprocess.Popen(
        [*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), "--cores", "2"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if moment(folder):
            break
        time.sleep(0.001)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.workflow
@pytest.mark.parametrize("moment", [training_iteration_1, writing_iteration_1])
def test_a_killed_study_resumes_to_the_same_result(moment, uninterrupted, tmp_path):
    # The writing moment lasts a fraction of a second; a kill that lands after
    # it is tried again in a fresh folder rather than taken for a pass.
    for attempt in range(3):
        killed = tiny_deterministic_study(tmp_path / f"killed{attempt}")
        kill_at(moment, killed)
        if not (killed / ITER1 / "metrics.json").exists():
            break
    assert moment(killed), "the kill came before the chosen moment"
    assert not (killed / ITER1 / "metrics.json").exists(), "the kill came too late"

    assert run_to_table(killed, "--unlock").returncode == 0
    resumed = run_to_table(killed, "--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "iteration=0" not in resumed.stdout + resumed.stderr  # not redone
    assert chain_outputs(killed) == uninterrupted
    assert not list(killed.rglob(".*.partial*"))


@pytest.mark.workflow
def test_rebuilding_the_report_gives_the_same_tables_and_figures(tiny_study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(tiny_study, copy, symlinks=True)
    products = sorted(
        p
        for folder in ("tables", "figures")
        for p in (copy / "results" / folder).iterdir()
    )
    before = {p: p.read_bytes() for p in products}
    result = subprocess.run(
        [*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), "--cores", "2"]
        + ["--forcerun", "tabulate_study"],
        cwd=copy,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rule plot_figures" in result.stdout + result.stderr
    changed = [p.name for p in products if p.read_bytes() != before[p]]
    assert changed == []
