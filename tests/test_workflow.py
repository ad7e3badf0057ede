"""The real workflow on the real data, made tiny by config."""

from __future__ import annotations

import json
import re
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

from selftrain import data

from .conftest import ROOT, snakemake

pytestmark = pytest.mark.workflow

K, LAST = 50, 2  # from tests/configs/tiny.yaml


def iteration_dir(study, i):
    return study / "results" / "runs" / "course" / "seed0" / f"iter{i}"


def test_each_iteration_leaves_a_checkpoint(tiny_study):
    for i in range(LAST + 1):
        folder = iteration_dir(tiny_study, i)
        with zipfile.ZipFile(folder / "model.keras") as archive:
            assert "config.json" in archive.namelist()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["iteration"] == i
        assert metrics["n_train"] == 200 + K * i
        # max_epochs for the new model, warm_epochs after it (no early stop).
        assert metrics["epochs"] == (2 if i == 0 else 1)
        for split in ("validation", "test"):
            assert 0.0 <= metrics[split]["f1_weighted"] <= 1.0
            assert len(metrics[split]["f1_per_class"]) == 10
        assert metrics["seconds_train"] > 0
        log = (
            tiny_study / "logs" / "run_iteration" / "course" / "seed0" / f"iter{i}.log"
        )
        assert "F1 weighted: validation" in log.read_text()
        bench = tiny_study / "results" / "benchmarks" / "run_iteration" / "course"
        assert "max_rss" in (bench / "seed0" / f"iter{i}.tsv").read_text()


def test_pseudo_labels_come_from_the_pool_and_never_repeat(tiny_study, fashion):
    split = data.Split.load(tiny_study / "results" / "splits" / "seed0.npz")
    assert len(split.labeled) == 200 and len(split.pool) == 300

    chosen = []
    for i in range(LAST):
        selected = pd.read_csv(iteration_dir(tiny_study, i) / "selected.csv")
        cumulative = pd.read_csv(iteration_dir(tiny_study, i) / "pseudo_labels.csv")
        chosen.append(selected)
        assert len(selected) == K
        assert len(cumulative) == K * (i + 1)
        assert np.all(np.diff(selected["entropy"]) >= 0)  # most confident first
        assert np.array_equal(
            selected["true_label"], fashion.train_labels[selected["pool_index"]]
        )
        metrics = json.loads(
            (iteration_dir(tiny_study, i) / "metrics.json").read_text()
        )
        precision = (selected["pseudo_label"] == selected["true_label"]).mean()
        assert metrics["pseudo_label_precision"] == pytest.approx(precision)

    picked = pd.concat(chosen)["pool_index"].to_numpy()
    assert len(np.unique(picked)) == len(picked)
    assert np.isin(picked, split.pool).all()
    assert not np.isin(picked, np.concatenate([split.labeled, split.validation])).any()
    last = pd.read_csv(iteration_dir(tiny_study, LAST) / "selected.csv")
    assert last.empty  # the last iteration chooses nothing


def test_iterations_table_has_one_row_per_iteration(tiny_study):
    table = pd.read_csv(tiny_study / "results" / "tables" / "iterations.csv")
    assert sorted(table["run"].unique()) == [
        "control",
        "course",
        "fresh",
        "oracle",
        "upper",
    ]
    table = table[table["run"] == "course"]
    assert table["iteration"].tolist() == list(range(LAST + 1))
    assert table["n_train"].tolist() == [200, 250, 300]
    for column in ("test_f1_weighted", "validation_f1_macro", "seconds_score"):
        assert table[column].notna().all()


def test_a_finished_study_has_nothing_left_to_do(tiny_study):
    result = snakemake(tiny_study, "-n", "--cores", "2")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_deleting_an_iteration_reruns_it_and_only_what_follows(tiny_study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(tiny_study, copy, symlinks=True)
    shutil.rmtree(iteration_dir(copy, 1))
    plan = snakemake(copy, "-n", "--cores", "2").stdout
    assert "wildcards: run=course, seed=0, iteration=1" in plan
    assert "wildcards: run=course, seed=0, iteration=2" in plan
    assert "iteration=0" not in plan
    assert "rule make_split" not in plan


def planned_jobs(result) -> int:
    found = re.search(r"^run_iteration\s+(\d+)$", result.stdout + result.stderr, re.M)
    return int(found.group(1))


def test_the_default_study_plans_the_course_run_and_the_strong_run(tmp_path):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    result = snakemake(tmp_path, "-n", "--cores", "2")
    assert planned_jobs(result) == (1 + 15) + (1 + 3)


def test_the_controls_config_adds_its_runs_and_seeds_to_the_default(tmp_path):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    extra = ROOT / "config" / "seeds-and-controls.yaml"
    result = snakemake(tmp_path, "-n", "--cores", "2", "--configfile", str(extra))
    # Three seeds of course, wide_balanced, their two controls and random.
    assert planned_jobs(result) == 3 * (16 + 4 + 16 + 4 + 16)


def test_the_full_study_adds_every_run_to_the_default_ones(tmp_path):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    full = ROOT / "config" / "full-study.yaml"
    result = snakemake(tmp_path, "-n", "--cores", "2", "--configfile", str(full))
    # Per seed: seven chains of 15 rounds (course, balanced, max_probability,
    # random, oracle, supervised, relabel), two of 3 (wide_balanced,
    # wide_supervised) and the upper bound's single job.
    assert planned_jobs(result) == 3 * (7 * 16 + 2 * 4 + 1)


def test_a_bad_config_stops_before_any_job(tmp_path):
    (tmp_path / "config.yaml").write_text("runs:\n  course:\n    k: 0\n")
    result = snakemake(tmp_path, "-n", "--cores", "2", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "runs.course.k is wrong: 0 is less than the minimum of 1" in output
    assert not (tmp_path / "results").exists()


def test_the_workflow_lints_clean():
    result = snakemake(ROOT, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unwritable_results_folder_stops_before_any_job(tmp_path):
    shutil.copy(ROOT / "tests" / "configs" / "tiny.yaml", tmp_path / "config.yaml")
    (tmp_path / "results").symlink_to("/sys/kernel")  # refuses writes, even root's
    result = snakemake(tmp_path, "-n", "--cores", "2", check=False)
    assert result.returncode != 0
    assert "/sys/kernel is not writable" in result.stdout + result.stderr


def test_an_unknown_run_on_the_command_line_names_the_known_ones(tiny_study):
    target = "results/runs/nosuchrun/seed0/iter0/metrics.json"
    result = snakemake(tiny_study, "-n", "--cores", "2", target, check=False)
    assert result.returncode != 0
    assert "unknown run 'nosuchrun'" in result.stdout + result.stderr


def test_a_damaged_dataset_stops_the_study_naming_the_file(tmp_path, dataset_dir):
    damaged = tmp_path / "data"
    damaged.mkdir()
    for name in ("train-images", "train-labels", "t10k-images", "t10k-labels"):
        source = next(dataset_dir.glob(f"{name}-*.gz"))
        (damaged / source.name).write_bytes(source.read_bytes())
    labels = next(damaged.glob("t10k-labels-*.gz"))
    labels.write_bytes(labels.read_bytes()[:-40])  # truncated
    workdir = tmp_path / "study"
    workdir.mkdir()
    config = (ROOT / "tests" / "configs" / "tiny.yaml").read_text()
    (workdir / "config.yaml").write_text(
        config.replace("data:\n", f"data:\n  dir: {damaged}\n", 1)
    )
    result = snakemake(workdir, "--cores", "1", "results/splits/seed0.npz", check=False)
    assert result.returncode != 0
    log = (workdir / "logs" / "locate_dataset.log").read_text()
    assert f"{labels}: file is truncated" in log
    assert not (workdir / "results" / "data" / "dataset.json").exists()


def test_a_checkpoint_from_another_study_is_refused(tiny_study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(tiny_study, copy, symlinks=True)
    metrics_path = iteration_dir(copy, 0) / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["config_hash"] = "0123456789ab"
    metrics_path.write_text(json.dumps(metrics))
    shutil.rmtree(iteration_dir(copy, 1))
    good = (iteration_dir(copy, 2) / "metrics.json").read_text()

    result = snakemake(copy, "--cores", "1", check=False)
    assert result.returncode != 0
    log = (
        copy / "logs" / "run_iteration" / "course" / "seed0" / "iter1.log"
    ).read_text()
    assert "was computed with config hash 0123456789ab" in log
    assert "belongs to another study" in log
    assert (iteration_dir(copy, 2) / "metrics.json").read_text() == good
