"""Sentences about a study, written from its tables.

Every sentence states numbers that a reader finds in a table of the same
report; nothing here is fixed text about what the study ought to show.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

# A change smaller than this is reported as no change.
NEGLIGIBLE = 0.005

SENTENCES = {
    "en": {
        "best": "{run}: the best iteration by validation F1 is {i} "
        "(validation {v:.4f}, test {t:.4f}).",
        "change_one": "{run}: test weighted F1 went from {a:.4f} at iteration 0 "
        "to {b:.4f} at iteration {n} ({d:+.4f}); with one seed no uncertainty "
        "is available.",
        "change_many": "{run}: test weighted F1 went from {a:.4f} at iteration 0 "
        "to {b:.4f} at iteration {n}, a mean change of {d:+.4f} over {k} seeds "
        "(95% interval {lo:+.4f} to {hi:+.4f}; paired t-test p = {p:.3f}, "
        "Cohen's d = {effect:.2f}); the interval {verdict} zero.",
        "includes": "includes",
        "excludes": "excludes",
        "precision": "{run}: pseudo-label precision was {p0:.3f} in the first "
        "selection and {p1:.3f} in the last; it {trend}.",
        "fell": "fell",
        "rose": "rose",
        "held": "held steady",
        "gains": "{run}: from iteration 0 to {n}, test F1 rose most for {gained} "
        "and fell most for {lost}.",
        "gains_only": "{run}: from iteration 0 to {n}, test F1 rose most for "
        "{gained}; no class fell by more than {eps}.",
        "losses_only": "{run}: from iteration 0 to {n}, test F1 fell most for "
        "{lost}; no class rose by more than {eps}.",
        "no_class_change": "{run}: no class changed by more than {eps} in test "
        "F1 from iteration 0 to {n}.",
        "mix": "{run}: {share:.0%} of all chosen pseudo-labels were predicted as "
        "{top}; each class would be 10% under an even mix.",
        "time": "{run}: each epoch took {slope:.2f} s more per 1,000 added "
        "training images (R² {r2:.2f}); training took {t0:.1f} s at iteration 0 "
        "and {tn:.1f} s at iteration {n}.",
        "and": "and",
        "control_one": "{run} against the supervised control {control}: "
        "test weighted F1 {b:.4f} against {a:.4f} at the last iteration "
        "({d:+.4f}); one seed, no uncertainty.",
        "control_many": "{run} against the supervised control {control}: "
        "a mean difference of {d:+.4f} in test weighted F1 at the last iteration "
        "over {k} seeds (95% interval {lo:+.4f} to {hi:+.4f}; paired t-test "
        "p = {p:.3f}, Cohen's d = {effect:.2f}); the interval {verdict} zero.",
    },
    "es": {
        "best": "{run}: la mejor iteración según el F1 de validación es la {i} "
        "(validación {v:.4f}, prueba {t:.4f}).",
        "change_one": "{run}: el F1 ponderado de prueba pasó de {a:.4f} en la "
        "iteración 0 a {b:.4f} en la iteración {n} ({d:+.4f}); con una sola "
        "semilla no hay incertidumbre disponible.",
        "change_many": "{run}: el F1 ponderado de prueba pasó de {a:.4f} en la "
        "iteración 0 a {b:.4f} en la iteración {n}, un cambio medio de {d:+.4f} "
        "en {k} semillas (intervalo del 95% de {lo:+.4f} a {hi:+.4f}; prueba t "
        "pareada p = {p:.3f}, d de Cohen = {effect:.2f}); el intervalo {verdict} "
        "el cero.",
        "includes": "incluye",
        "excludes": "excluye",
        "precision": "{run}: la precisión de las pseudoetiquetas fue {p0:.3f} en "
        "la primera selección y {p1:.3f} en la última; {trend}.",
        "fell": "bajó",
        "rose": "subió",
        "held": "se mantuvo",
        "gains": "{run}: de la iteración 0 a la {n}, el F1 de prueba subió más "
        "en {gained} y bajó más en {lost}.",
        "gains_only": "{run}: de la iteración 0 a la {n}, el F1 de prueba subió "
        "más en {gained}; ninguna clase bajó más de {eps}.",
        "losses_only": "{run}: de la iteración 0 a la {n}, el F1 de prueba bajó "
        "más en {lost}; ninguna clase subió más de {eps}.",
        "no_class_change": "{run}: ninguna clase cambió más de {eps} en F1 de "
        "prueba de la iteración 0 a la {n}.",
        "mix": "{run}: el {share:.0%} de las pseudoetiquetas elegidas se "
        "predijeron como {top}; con una mezcla pareja cada clase sería el 10%.",
        "time": "{run}: cada época tardó {slope:.2f} s más por cada 1.000 "
        "imágenes de entrenamiento añadidas (R² {r2:.2f}); el entrenamiento "
        "duró {t0:.1f} s en la iteración 0 y {tn:.1f} s en la iteración {n}.",
        "and": "y",
        "control_one": "{run} frente al control supervisado {control}: F1 "
        "ponderado de prueba {b:.4f} frente a {a:.4f} en la última iteración "
        "({d:+.4f}); una semilla, sin incertidumbre.",
        "control_many": "{run} frente al control supervisado {control}: una "
        "diferencia media de {d:+.4f} en F1 ponderado de prueba en la última "
        "iteración en {k} semillas (intervalo del 95% de {lo:+.4f} a {hi:+.4f}; "
        "prueba t pareada p = {p:.3f}, d de Cohen = {effect:.2f}); el intervalo "
        "{verdict} el cero.",
    },
}


def _listing(items: Sequence[str], conjunction: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def paired_change(before: np.ndarray, after: np.ndarray) -> dict:
    """Summarise paired per-seed changes ``after - before``.

    Returns
    -------
    dict
        ``mean``, ``low`` and ``high`` (95% Student-t interval of the mean
        change), ``p`` (two-sided paired t-test) and ``effect`` (Cohen's d of
        the differences). Interval, p and effect are NaN for a single pair.

    Examples
    --------
    >>> r = paired_change(np.array([0.80, 0.82, 0.81]), np.array([0.81, 0.84, 0.82]))
    >>> round(r["mean"], 4)
    0.0133
    """
    diff = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    result = {"mean": float(diff.mean()), "n": len(diff)}
    if len(diff) < 2:
        return {**result, "low": np.nan, "high": np.nan, "p": np.nan, "effect": np.nan}
    sd = diff.std(ddof=1)
    half = stats.t.ppf(0.975, len(diff) - 1) * sd / np.sqrt(len(diff))
    if sd == 0:
        p, effect = (1.0, 0.0) if diff.mean() == 0 else (0.0, np.inf)
    else:
        p, effect = float(stats.ttest_rel(after, before).pvalue), diff.mean() / sd
    return {
        **result,
        "low": result["mean"] - half,
        "high": result["mean"] + half,
        "p": p,
        "effect": float(effect),
    }


def observations(
    iterations: pd.DataFrame,
    per_class: pd.DataFrame,
    selections: pd.DataFrame,
    timing: pd.DataFrame,
    class_names: Sequence[str],
    language: str = "en",
) -> list[str]:
    """Return the report's observations, a few sentences per run.

    Parameters
    ----------
    iterations : pandas.DataFrame
        One row per run, seed and iteration (see ``tables.iteration_table``).
    per_class : pandas.DataFrame
        Test F1 per class (see ``tables.per_class_table``).
    selections : pandas.DataFrame
        Class mix of the pseudo-labels (see ``tables.selection_table``).
    timing : pandas.DataFrame
        Fitted lines (see ``tables.timing_table``).
    class_names : sequence of str
        In the report's language.
    language : {"en", "es"}

    Returns
    -------
    list of str
    """
    say = SENTENCES[language]
    sentences = []
    for run, chain in iterations.groupby("run", sort=False):
        means = chain.groupby("iteration").mean(numeric_only=True)
        last = int(means.index.max())

        best = int(means["validation_f1_weighted"].idxmax())
        sentences.append(
            say["best"].format(
                run=run,
                i=best,
                v=means.loc[best, "validation_f1_weighted"],
                t=means.loc[best, "test_f1_weighted"],
            )
        )

        if last > 0:
            sentences.append(_change(say, run, chain, last))
            sentences.extend(_precision(say, run, means))
            sentences.append(_classes(say, run, per_class, class_names, last))
        sentences.extend(_mix(say, run, selections, class_names))
        sentences.extend(_time(say, run, timing, means, last))
    sentences.extend(_against_control(say, iterations))
    return sentences


def _final_by_seed(chain: pd.DataFrame) -> pd.Series:
    """Test weighted F1 at each seed's last iteration."""
    last = chain.loc[chain.groupby("seed")["iteration"].idxmax()]
    return last.set_index("seed")["test_f1_weighted"]


def _verdict(change: dict) -> str:
    return "excludes" if change["low"] > 0 or change["high"] < 0 else "includes"


def _control_of(run_chain: pd.DataFrame, controls: pd.DataFrame) -> str | None:
    """The supervised control that matches a run: the same architecture, and
    among those the same number of iterations (the same training budget)."""
    if "architecture" in controls:
        controls = controls[
            controls["architecture"] == run_chain["architecture"].iloc[0]
        ]
    if controls.empty:
        return None
    last = controls.groupby("run")["iteration"].max()
    same_budget = last[last == run_chain["iteration"].max()]
    return (same_budget if len(same_budget) else last).index[0]


def _against_control(say, iterations) -> list[str]:
    """Each run against its supervised control, paired by seed."""
    if "strategy" not in iterations:
        return []
    controls = iterations[iterations["strategy"] == "none"]
    sentences = []
    for run, chain in iterations.groupby("run", sort=False):
        if chain["strategy"].iloc[0] in ("none", "upper_bound"):
            continue
        control = _control_of(chain, controls)
        if control is None:
            continue
        baseline = _final_by_seed(iterations[iterations["run"] == control])
        final = _final_by_seed(chain)
        seeds = baseline.index.intersection(final.index)
        change = paired_change(baseline[seeds].to_numpy(), final[seeds].to_numpy())
        values = {"run": run, "control": control, "d": change["mean"]}
        if change["n"] < 2:
            sentences.append(
                say["control_one"].format(
                    a=baseline[seeds].mean(), b=final[seeds].mean(), **values
                )
            )
            continue
        sentences.append(
            say["control_many"].format(
                k=change["n"],
                lo=change["low"],
                hi=change["high"],
                p=change["p"],
                effect=change["effect"],
                verdict=say[_verdict(change)],
                **values,
            )
        )
    return sentences


def _change(say, run, chain, last) -> str:
    by_seed = chain.pivot_table(
        index="seed", columns="iteration", values="test_f1_weighted"
    )
    before, after = by_seed[0].to_numpy(), by_seed[last].to_numpy()
    change = paired_change(before, after)
    values = {"run": run, "a": before.mean(), "b": after.mean(), "n": last}
    if change["n"] < 2:
        return say["change_one"].format(d=change["mean"], **values)
    verdict = _verdict(change)
    return say["change_many"].format(
        d=change["mean"],
        k=change["n"],
        lo=change["low"],
        hi=change["high"],
        p=change["p"],
        effect=change["effect"],
        verdict=say[verdict],
        **values,
    )


def _precision(say, run, means) -> list[str]:
    precision = means["pseudo_label_precision"].dropna()
    if precision.empty:
        return []
    first, final = precision.iloc[0], precision.iloc[-1]
    if final < first - NEGLIGIBLE:
        trend = say["fell"]
    elif final > first + NEGLIGIBLE:
        trend = say["rose"]
    else:
        trend = say["held"]
    return [say["precision"].format(run=run, p0=first, p1=final, trend=trend)]


def _classes(say, run, per_class, class_names, last) -> str:
    f1 = (
        per_class[per_class["run"] == run]
        .groupby(["iteration", "class_index"])["test_f1"]
        .mean()
        .unstack()
    )
    change = (f1.loc[last] - f1.loc[0]).sort_values()
    gained = [
        f"{class_names[c]} ({d:+.3f})"
        for c, d in change[::-1].items()
        if d > NEGLIGIBLE
    ][:3]
    lost = [
        f"{class_names[c]} ({d:+.3f})" for c, d in change.items() if d < -NEGLIGIBLE
    ][:3]
    if gained and lost:
        template = "gains"
    elif gained:
        template = "gains_only"
    elif lost:
        template = "losses_only"
    else:
        template = "no_class_change"
    return say[template].format(
        run=run,
        n=last,
        eps=NEGLIGIBLE,
        gained=_listing(gained, say["and"]),
        lost=_listing(lost, say["and"]),
    )


def _mix(say, run, selections, class_names) -> list[str]:
    chosen = selections[selections["run"] == run]
    if chosen.empty:
        return []
    totals = chosen.groupby("class_index")["n_selected"].sum().sort_values()[::-1]
    top = totals.head(3)
    return [
        say["mix"].format(
            run=run,
            share=top.sum() / totals.sum(),
            top=_listing([class_names[c] for c in top.index], say["and"]),
        )
    ]


def _time(say, run, timing, means, last) -> list[str]:
    fit = timing[(timing["run"] == run) & (timing["y"] == "seconds_per_epoch")]
    if fit.empty:
        return []
    return [
        say["time"].format(
            run=run,
            slope=fit["slope"].iloc[0],
            r2=fit["r2"].iloc[0],
            t0=means.loc[0, "seconds_train"],
            tn=means.loc[last, "seconds_train"],
            n=last,
        )
    ]
