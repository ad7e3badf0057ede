"""Fill the Jinja2 report template and render it to HTML and PDF.

The HTML is self-contained (styles and figures inlined) so it opens from a
mail attachment; WeasyPrint turns the same HTML into an A4 PDF.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import pandas as pd

from selftrain import atomic, provenance
from selftrain.data import Split
from selftrain.report import text
from selftrain.report.observations import observations

TEMPLATE = "report.html.j2"
STYLESHEET = "report.css"


@dataclass(frozen=True)
class StudyTables:
    """The tables a report is written from (see ``selftrain.report.tables``)."""

    iterations: pd.DataFrame
    summary: pd.DataFrame
    per_class: pd.DataFrame
    selections: pd.DataFrame
    timing: pd.DataFrame

    @classmethod
    def read(cls, folder: str | os.PathLike) -> StudyTables:
        """Read the CSV tables of ``results/tables``."""
        folder = Path(folder)
        return cls(
            **{
                name: pd.read_csv(folder / f"{name}.csv")
                for name in (
                    "iterations",
                    "summary",
                    "per_class",
                    "selections",
                    "timing",
                )
            }
        )


def flatten(settings: dict, prefix: str = "") -> dict:
    """Flatten nested dicts to ``{"a.b.c": value}``."""
    flat = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def changed_settings(config: dict, defaults: dict) -> list[tuple[str, str, str]]:
    """Return ``(key, value, default)`` for every setting that differs.

    Runs are compared setting by setting with a run of the schema's defaults,
    so a run added to the default study shows only what makes it different.
    """
    run_defaults = flatten(next(iter(defaults["runs"].values())))
    config_flat = flatten({k: v for k, v in config.items() if k != "runs"})
    default_flat = flatten({k: v for k, v in defaults.items() if k != "runs"})
    changed = [
        (key, value, default_flat.get(key, "—"))
        for key, value in config_flat.items()
        if default_flat.get(key) != value
    ]
    for run, settings in config["runs"].items():
        if run not in defaults["runs"]:
            changed.append((f"runs.{run}", "added", "—"))
        for key, value in flatten(settings).items():
            if run_defaults.get(key) != value:
                changed.append((f"runs.{run}.{key}", value, run_defaults.get(key, "—")))
    return [(k, _show(v), _show(d)) for k, v, d in changed]


def _show(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def _with_interval(row: pd.Series, name: str, digits: int = 4) -> str:
    mean = _number(row[f"{name}_mean"], digits)
    if row["n_seeds"] < 2 or mean == "—":
        return mean
    half = (row[f"{name}_high"] - row[f"{name}_low"]) / 2
    return f"{mean} ± {half:.{digits}f}"


def iteration_rows(tables: StudyTables) -> dict[str, list[dict]]:
    """Per run, one formatted row per iteration for the results table."""
    extra = tables.iterations.groupby(["run", "iteration"]).mean(numeric_only=True)
    rows = {}
    for _, s in tables.summary.iterrows():
        e = extra.loc[(s["run"], s["iteration"])]
        rows.setdefault(s["run"], []).append(
            {
                "iteration": int(s["iteration"]),
                "n_train": f"{s['n_train_mean']:,.0f}",
                "added": f"{e['n_selected']:,.0f}",
                "precision": _with_interval(s, "pseudo_label_precision", 3),
                "validation_f1": _with_interval(s, "validation_f1_weighted"),
                "test_f1": _with_interval(s, "test_f1_weighted"),
                "test_f1_macro": _with_interval(s, "test_f1_macro"),
                "epochs": f"{e['epochs']:.1f}".removesuffix(".0"),
                "seconds": f"{e['seconds_train']:.1f}",
                "peak_mb": _number(e.get("peak_rss_mb"), 0),
            }
        )
    return rows


def class_rows(tables: StudyTables, class_names: Sequence[str]) -> list[dict]:
    """Test F1 per class at the first and last iteration of each run."""
    f1 = tables.per_class.groupby(["run", "iteration", "class_index"])["test_f1"].mean()
    rows = []
    for run in tables.per_class["run"].unique():
        last = int(
            tables.per_class.loc[tables.per_class["run"] == run, "iteration"].max()
        )
        for c, name in enumerate(class_names):
            first, final = f1.loc[(run, 0, c)], f1.loc[(run, last, c)]
            rows.append(
                {
                    "run": run,
                    "class": name,
                    "first": f"{first:.3f}",
                    "last": f"{final:.3f}",
                    "change": f"{final - first:+.3f}",
                    "last_iteration": last,
                }
            )
    return rows


def run_table(runs: dict) -> dict:
    """One column per run and one row per setting that any run has.

    Settings are rows because a study has more of them than runs, which keeps
    the table within a page's width.
    """
    keys = list(dict.fromkeys(key for settings in runs.values() for key in settings))
    rows = [
        (key, [_show(settings.get(key, "—")) for settings in runs.values()])
        for key in keys
    ]
    return {"columns": list(runs), "rows": rows}


def data_uri(path: str | os.PathLike) -> str:
    """Return the file as a ``data:`` URI, so the HTML needs no other file."""
    path = Path(path)
    kind = {".svg": "image/svg+xml", ".png": "image/png"}[path.suffix]
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def build_context(
    tables: StudyTables,
    figures: dict[str, str | os.PathLike],
    config: dict,
    defaults: dict,
    split_sizes: dict[str, int],
    models: dict[str, dict],
    final: dict,
    provenance: dict,
) -> dict:
    """Collect everything the template shows.

    Parameters
    ----------
    tables : StudyTables
    figures : dict
        Figure name to its SVG file.
    config, defaults : dict
        The study's config and the schema's defaults (both validated).
    split_sizes : dict
        ``labeled``, ``validation``, ``pool`` and ``test`` image counts.
    models : dict
        Architecture name to ``metrics["model"]`` (layers and parameters).
    final : dict
        The exported classifier's metadata (``classifier.json``).
    provenance : dict
        Versions, commit, machine, config hash, seeds, device, job time.
    """
    language = config.get("report", {}).get("language", "en")
    words = text.words(language)
    class_names = text.class_names(language)
    captions = {
        "f1_per_iteration": words["fig_f1"],
        "f1_vs_size": words["fig_f1_size"],
        "time_vs_size": words["fig_time"],
        "pseudo_label_precision": words["fig_precision"],
        "selection_mix": words["fig_mix"],
        "confusion_matrix": words["fig_confusion"],
        "test_examples": words["fig_examples"],
    }
    n_seeds = tables.iterations.groupby("run")["seed"].nunique().max()
    return {
        "language": language,
        "w": words,
        "class_names": class_names,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "split": split_sizes,
        "models": models,
        "runs": run_table(config["runs"]),
        "changed": changed_settings(config, defaults),
        "iteration_rows": iteration_rows(tables),
        "class_rows": class_rows(tables, class_names),
        "timing": tables.timing.to_dict("records"),
        "several_seeds": bool(n_seeds > 1),
        "figures": [
            {"name": name, "caption": captions[name], "src": data_uri(path)}
            for name, path in figures.items()
        ],
        "observations": observations(
            tables.iterations,
            tables.per_class,
            tables.selections,
            tables.timing,
            class_names,
            language,
        ),
        "final": final,
        "provenance": provenance,
    }


def environment(template_dir: str | os.PathLike) -> jinja2.Environment:
    """The Jinja2 environment: autoescaping on, unknown variables an error."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(context: dict, template_dir: str | os.PathLike) -> str:
    """Fill the template; the stylesheet is inlined."""
    stylesheet = (Path(template_dir) / STYLESHEET).read_text()
    template = environment(template_dir).get_template(TEMPLATE)
    return template.render(stylesheet=stylesheet, **context)


def write(html: str, html_path: str | os.PathLike, pdf_path: str | os.PathLike):
    """Write the HTML and render it to PDF with WeasyPrint, both atomically."""
    import weasyprint

    atomic.write_text(html, html_path)
    with atomic.replacing(pdf_path) as tmp:
        weasyprint.HTML(string=html, base_url=str(Path(html_path).parent)).write_pdf(
            tmp
        )


def study_provenance(tables: StudyTables, config: dict, repository) -> dict:
    """Versions, commit, machine, config hash, seeds, device and job time."""
    iterations = tables.iterations
    devices = sorted(set(iterations["device"] + ", " + iterations["precision"]))
    job_seconds = iterations.get("job_seconds", iterations["seconds_total"]).sum()
    return {
        "versions": provenance.package_versions(),
        "commit": provenance.git_commit(repository),
        "machine": provenance.machine(),
        "cpu_features": provenance.cpu_features(),
        "environment": provenance.environment_check(repository),
        "config_hash": hashlib.sha256(
            json.dumps(config, sort_keys=True).encode()
        ).hexdigest()[:12],
        "seeds": config["seeds"],
        "device": "; ".join(devices),
        "job_time": f"{job_seconds / 60:.1f} min ({len(iterations)} jobs)",
    }


def render_study(
    tables_dir: str | os.PathLike,
    figures: Sequence[str | os.PathLike],
    classifier: str | os.PathLike,
    split: str | os.PathLike,
    first_metrics: Sequence[str | os.PathLike],
    config: dict,
    defaults: dict,
    template_dir: str | os.PathLike,
    repository: str | os.PathLike,
    html_path: str | os.PathLike,
    pdf_path: str | os.PathLike,
) -> dict:
    """Gather a finished study's outputs and write its HTML and PDF report.

    Returns
    -------
    dict
        The template's context, for logging and tests.
    """
    tables = StudyTables.read(tables_dir)
    sizes = Split.load(split)
    models = {}
    for path in first_metrics:
        described = json.loads(Path(path).read_text())["model"]
        models[described["name"]] = described
    context = build_context(
        tables,
        {Path(p).stem: p for p in figures},
        config,
        defaults,
        {
            "labeled": len(sizes.labeled),
            "validation": len(sizes.validation),
            "pool": len(sizes.pool),
            "test": len(sizes.test),
        },
        models,
        json.loads(Path(classifier).read_text()),
        study_provenance(tables, config, repository),
    )
    write(render_html(context, template_dir), html_path, pdf_path)
    return context
