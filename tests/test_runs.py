"""The study's reference runs, on the tiny workflow run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from selftrain import data, study

pytestmark = pytest.mark.workflow


def folder(tiny_study, run, i):
    return tiny_study / "results" / "runs" / run / "seed0" / f"iter{i}"


def read(tiny_study, run, i, name):
    path = folder(tiny_study, run, i) / name
    return json.loads(path.read_text()) if name.endswith(".json") else pd.read_csv(path)


def test_the_oracle_adds_the_followed_runs_images_with_true_labels(tiny_study):
    for i in range(2):
        course = read(tiny_study, "course", i, "selected.csv")
        oracle = read(tiny_study, "oracle", i, "selected.csv")
        assert oracle["pool_index"].tolist() == course["pool_index"].tolist()
        assert (oracle["pseudo_label"] == oracle["true_label"]).all()
        assert read(tiny_study, "oracle", i, "metrics.json")[
            "pseudo_label_precision"
        ] == pytest.approx(1.0)
    assert read(tiny_study, "oracle", 2, "metrics.json")["n_train"] == 300


def test_the_control_never_leaves_the_labelled_set(tiny_study):
    for i in range(3):
        metrics = read(tiny_study, "control", i, "metrics.json")
        assert metrics["n_train"] == 200
        assert metrics["n_selected"] == 0
    assert read(tiny_study, "control", 2, "pseudo_labels.csv").empty


def test_warm_started_iterations_train_for_the_warm_budget(tiny_study):
    def epochs(run, i):
        return read(tiny_study, run, i, "metrics.json")["epochs"]

    assert [epochs("course", i) for i in range(3)] == [2, 1, 1]
    assert [epochs("control", i) for i in range(3)] == [2, 1, 1]
    # A run that starts afresh each round gets the full budget every time.
    assert [epochs("fresh", i) for i in range(3)] == [2, 2, 2]


def test_the_upper_bound_trains_once_on_every_true_label(tiny_study):
    metrics = read(tiny_study, "upper", 0, "metrics.json")
    assert metrics["n_train"] == 200 + 300
    assert not folder(tiny_study, "upper", 1).exists()


def test_relabelling_replaces_the_pseudo_labelled_set_each_round(tiny_study):
    split = data.Split.load(tiny_study / "results" / "splits" / "seed0.npz")
    for i, size in ((0, 40), (1, 80)):
        chosen = read(tiny_study, "fresh", i, "pseudo_labels.csv")
        assert len(chosen) == size
        assert chosen["pool_index"].is_unique
        assert np.isin(chosen["pool_index"], split.pool).all()
        assert (chosen["iteration"] == i).all()  # all labelled by this round's model
    assert read(tiny_study, "fresh", 2, "metrics.json")["n_train"] == 280


def test_the_final_classifier_never_comes_from_a_run_with_true_pool_labels(
    tiny_study,
):
    final = json.loads(
        (tiny_study / "results" / "final" / "classifier.json").read_text()
    )
    assert final["source"]["run"] in ("course", "control", "fresh")


def test_an_oracle_must_follow_a_run_that_chooses(tmp_path):
    from .test_study import validated

    with pytest.raises(study.ConfigError, match="must follow another run"):
        validated({"runs": {"o": {"strategy": "oracle"}}})
    with pytest.raises(study.ConfigError, match="chooses no pool images"):
        validated(
            {
                "runs": {
                    "c": {"strategy": "none"},
                    "o": {"strategy": "oracle", "follow": "c"},
                }
            }
        )
