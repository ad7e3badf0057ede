"""Aggregation, observations and rendering of the report."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from selftrain import study
from selftrain.report import FIGURES, render, tables
from selftrain.report.observations import observations, paired_change
from selftrain.report.text import class_names

from .conftest import ROOT, snakemake

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def metrics(run, seed, iteration, test, validation=None, precision=0.9, n=100):
    """A hand-made ``metrics.json`` with uniform per-class F1."""
    validation = test if validation is None else validation
    scores = lambda f1: {  # noqa: E731
        "accuracy": f1,
        "f1_weighted": f1,
        "f1_macro": f1,
        "f1_per_class": [f1] * 10,
    }
    return {
        "run": run,
        "seed": seed,
        "iteration": iteration,
        "config_hash": "abc",
        "n_train": n + 10 * iteration,
        "n_selected": 10,
        "pseudo_label_precision": precision,
        "epochs": 2,
        "seconds_train": 1.0 + 0.01 * (n + 10 * iteration),
        "seconds_total": 5.0,
        "device": "CPU",
        "precision": "float32",
        "validation": scores(validation),
        "test": scores(test),
    }


def study_tables(rows):
    table = tables.iteration_table(rows)
    return table, tables.per_class_table(rows, class_names())


def test_iteration_table_flattens_scores_and_joins_benchmarks(tmp_path):
    rows = [metrics("a", 0, 1, 0.8), metrics("a", 0, 0, 0.7)]
    bench = []
    for i, rss in enumerate((900.5, 950.0)):
        path = tmp_path / f"b{i}.tsv"
        path.write_text(f"s\th:m:s\tmax_rss\n{10 + i}\t0:00:10\t{rss}\n")
        bench.append(path)
    table = tables.iteration_table(rows, bench)
    assert table["iteration"].tolist() == [0, 1]  # sorted
    assert table["test_f1_weighted"].tolist() == [0.7, 0.8]
    assert table["peak_rss_mb"].tolist() == [950.0, 900.5]  # follows its row
    assert table["seconds_per_epoch"].tolist() == pytest.approx([1.0, 1.05])


def test_summary_gives_mean_and_t_interval_across_seeds():
    rows = [metrics("a", s, 0, f1) for s, f1 in enumerate((0.80, 0.82, 0.84))]
    summary = tables.summary_table(tables.iteration_table(rows))
    row = summary.iloc[0]
    assert row["n_seeds"] == 3
    assert row["test_f1_weighted_mean"] == pytest.approx(0.82)
    # t(0.975, 2) = 4.302653; standard error = 0.02 / sqrt(3)
    half = 4.302653 * 0.02 / np.sqrt(3)
    assert row["test_f1_weighted_low"] == pytest.approx(0.82 - half, abs=1e-6)
    assert row["test_f1_weighted_high"] == pytest.approx(0.82 + half, abs=1e-6)


def test_summary_with_one_seed_has_no_interval():
    summary = tables.summary_table(tables.iteration_table([metrics("a", 0, 0, 0.8)]))
    assert np.isnan(summary.loc[0, "test_f1_weighted_low"])


def test_timing_fit_recovers_a_known_line():
    rows = [metrics("a", 0, i, 0.8) for i in range(5)]
    timing = tables.timing_table(tables.iteration_table(rows))
    fit = timing[timing["y"] == "seconds_train"].iloc[0]
    assert fit["slope"] == pytest.approx(10.0)  # 0.01 s per image = 10 s per 1,000
    assert fit["r2"] == pytest.approx(1.0)
    assert fit["n"] == 5


def test_the_final_classifier_is_chosen_on_validation_never_test():
    rows = [
        metrics("high_test", 0, 1, test=0.95, validation=0.80),
        metrics("high_validation", 0, 1, test=0.85, validation=0.90),
    ]
    table = tables.iteration_table(rows)
    assert tables.choose_final(table)["run"] == "high_validation"
    table["test_f1_weighted"] = table["test_f1_weighted"].to_numpy()[::-1]
    assert tables.choose_final(table)["run"] == "high_validation"


def test_paired_change_matches_a_hand_computation():
    result = paired_change(np.array([0.80, 0.82, 0.81]), np.array([0.81, 0.84, 0.82]))
    # differences 0.01, 0.02, 0.01: mean 0.01333, sd 0.005774, t = 4.0 on 2 df
    assert result["mean"] == pytest.approx(0.013333, abs=1e-6)
    assert result["p"] == pytest.approx(0.057191, abs=1e-5)
    assert result["effect"] == pytest.approx(2.309401, abs=1e-5)
    assert result["low"] < 0 < result["high"]


def sentences(rows, language="en"):
    table, per_class = study_tables(rows)
    timing = tables.timing_table(table)
    selections = pd.DataFrame(
        {
            "run": "a",
            "seed": 0,
            "iteration": 0,
            "class_index": [1, 5, 8],
            "class": ["Trouser", "Sandal", "Bag"],
            "n_selected": [40, 30, 20],
            "n_correct": [40, 30, 20],
        }
    )
    return observations(
        table, per_class, selections, timing, class_names(language), language
    )


def test_observations_for_one_seed_say_no_uncertainty():
    text = " ".join(sentences([metrics("a", 0, i, 0.80 + 0.01 * i) for i in range(3)]))
    assert "best iteration by validation F1 is 2" in text
    assert "from 0.8000 at iteration 0 to 0.8200 at iteration 2 (+0.0200)" in text
    assert "no uncertainty is available" in text
    assert "100% of all chosen pseudo-labels were predicted as Trouser" in text


def test_observations_for_several_seeds_give_an_interval_and_a_test():
    rows = [
        metrics("a", s, i, 0.80 + 0.01 * i + 0.002 * s + 0.001 * s * i)
        for s in range(3)
        for i in range(2)
    ]
    text = " ".join(sentences(rows))
    assert "mean change of +0.0110 over 3 seeds" in text
    assert "paired t-test p = " in text
    assert "the interval excludes zero" in text


def test_observations_report_a_run_that_gets_worse():
    rows = [
        metrics("a", s, i, 0.85 - 0.02 * i - 0.001 * s * i, precision=0.95 - 0.1 * i)
        for s in range(3)
        for i in range(3)
    ]
    rows[-1]["test"]["f1_per_class"][3] = 0.99  # one class gains despite the rest
    text = " ".join(sentences(rows))
    assert "best iteration by validation F1 is 0" in text
    assert "mean change of -0.0420" in text
    assert "pseudo-label precision was 0.950 in the first selection and 0.750" in text
    assert "it fell" in text
    assert "rose most for Dress" in text


def test_each_run_is_compared_with_the_control_of_its_own_architecture():
    def row(run, architecture, strategy, seed, iteration, test):
        m = metrics(run, seed, iteration, test)
        return {**m, "strategy": strategy, "model": {"name": architecture}}

    gains = {
        ("course", "course", "entropy"): 0.010,
        ("supervised", "course", "none"): 0.0,
        ("wide", "wide_bn", "balanced"): 0.105,
        ("wide_supervised", "wide_bn", "none"): 0.1,
    }
    rows = [
        row(run, architecture, strategy, s, i, 0.8 + gain * i + 0.003 * s)
        for (run, architecture, strategy), gain in gains.items()
        for s in range(3)
        for i in range(2)
    ]
    rows[1]["test"]["f1_weighted"] += 0.002  # seeds differ a little in gain
    text = " ".join(sentences(rows))
    assert (
        "course against the supervised control supervised: a mean difference "
        "of +0.0107" in text
    )
    assert (
        "wide against the supervised control wide_supervised: a mean difference "
        "of +0.0050" in text
    )
    assert "course against the supervised control wide_supervised" not in text


def test_observations_in_spanish():
    text = " ".join(sentences([metrics("a", 0, i, 0.8) for i in range(2)], "es"))
    assert "la mejor iteración según el F1 de validación" in text
    assert "Pantalón" in text


def test_changed_settings_lists_only_what_differs():
    defaults = {}
    study.validate(defaults, SCHEMA)
    config = copy.deepcopy(defaults)
    config["seeds"] = [0, 1]
    config["runs"]["course"]["k"] = 100
    config["runs"]["random"] = {**config["runs"]["course"], "strategy": "random"}
    changed = {
        key: value for key, value, _ in render.changed_settings(config, defaults)
    }
    assert changed == {
        "seeds": "0, 1",
        "runs.course.k": "100",
        "runs.random": "added",
        "runs.random.k": "100",
        "runs.random.strategy": "random",
    }


@pytest.fixture(scope="module")
def tiny_report(tiny_study):
    results = tiny_study / "results"
    return {
        "html": (results / "report" / "report.html").read_text(),
        "pdf": results / "report" / "report.pdf",
        "results": results,
    }


def test_the_html_report_is_complete_and_self_contained(tiny_report):
    html = tiny_report["html"]
    assert html.count('src="data:image/svg+xml;base64,') == len(FIGURES)
    for name in FIGURES:
        assert f'id="figure-{name}"' in html
    assert "{{" not in html and "{%" not in html
    assert 'src="http' not in html and 'href="http' not in html
    assert "test weighted F1 went from" in html


def test_the_pdf_report_has_pages_and_text(tiny_report):
    from pypdf import PdfReader

    reader = PdfReader(tiny_report["pdf"])
    assert len(reader.pages) >= 3
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "Self-training a CNN on Fashion-MNIST" in text
    assert "Observations" in text and "Provenance" in text


def render_tiny(results, run_name="course", language="en"):
    """Render the tiny study's report again, optionally renaming its run."""
    names = ("iterations", "summary", "per_class", "selections", "timing")
    frames = {n: pd.read_csv(results / "tables" / f"{n}.csv") for n in names}
    for frame in frames.values():
        frame["run"] = frame["run"].replace("course", run_name)
    config = yaml.safe_load((results.parent / "config.yaml").read_text())
    study.validate(config, SCHEMA)
    config["runs"] = {run_name: config["runs"]["course"]}
    config["report"]["language"] = language
    defaults = {}
    study.validate(defaults, SCHEMA)
    final = json.loads((results / "final" / "classifier.json").read_text())
    final["source"]["run"] = run_name
    context = render.build_context(
        render.StudyTables(**frames),
        {n: results / "figures" / f"{n}.svg" for n in FIGURES},
        config,
        defaults,
        {"labeled": 200, "validation": 100, "pool": 300, "test": 500},
        {},
        final,
        render.study_provenance(render.StudyTables(**frames), config, ROOT),
    )
    return render.render_html(context, ROOT / "templates")


def test_a_hostile_run_name_is_escaped(tiny_report):
    html = render_tiny(tiny_report["results"], "<script>alert(1)</script>")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_report_speaks_spanish(tiny_report):
    html = render_tiny(tiny_report["results"], language="es")
    assert '<html lang="es">' in html
    assert "Observaciones" in html and "Pantalón" in html and "Botín" in html
    assert "10 clases:" in html


def test_a_template_change_rebuilds_only_the_report(tiny_study, tmp_path):
    study_copy = tmp_path / "study"
    shutil.copytree(tiny_study, study_copy, symlinks=True)
    shutil.copytree(ROOT / "templates", study_copy / "my-templates")
    config = yaml.safe_load((study_copy / "config.yaml").read_text())
    config["report"] = {"templates": "my-templates"}
    (study_copy / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(study_copy, "--cores", "2")

    template = study_copy / "my-templates" / "report.html.j2"
    template.write_text(template.read_text().replace("<h2>", "<h2 class='new'>"))
    result = snakemake(study_copy, "--cores", "2")
    log = result.stdout + result.stderr
    assert "rule render_report" in log
    for rule in ("run_iteration", "tabulate_study", "plot_figures", "make_split"):
        assert f"rule {rule}" not in log
    html = (study_copy / "results" / "report" / "report.html").read_text()
    assert "<h2 class='new'>" in html


def test_snakemake_also_writes_its_own_provenance_report(tiny_study, tmp_path):
    target = tmp_path / "provenance.zip"
    snakemake(tiny_study, "--report", str(target))
    import zipfile

    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
    assert any(name.endswith("report.pdf") for name in names)
    assert any(name.endswith("f1_per_iteration.svg") for name in names)


def test_observations_name_gains_without_inventing_losses():
    rows = [metrics("a", 0, i, 0.80) for i in range(2)]
    rows[-1]["test"]["f1_per_class"][6] = 0.90  # Shirt gains, nothing loses
    text = " ".join(sentences(rows))
    assert "rose most for Shirt (+0.100); no class fell by more than 0.005" in text


def test_the_run_table_has_a_column_per_run_and_a_row_per_setting():
    table = render.run_table(
        {"course": {"k": 500, "strategy": "entropy"}, "wide": {"k": 2500, "x": True}}
    )
    assert table["columns"] == ["course", "wide"]
    assert table["rows"] == [
        ("k", ["500", "2500"]),
        ("strategy", ["entropy", "—"]),
        ("x", ["—", "True"]),
    ]
