"""How fast one self-training iteration runs, and where its time goes.

Run by hand, on an otherwise idle machine:

    .venv/bin/python benchmarks/speed.py [--study results] [--repeats 3]

It prints, each as the median of ``--repeats`` timings:

- training images/s of the course CNN in float32 and mixed bfloat16;
- the machine's training images/s with one two-thread job against two
  one-thread jobs side by side;
- pool-scoring images/s for T = 1 and T = 10 Monte-Carlo dropout passes,
  ours (the layers before the first dropout run once per batch, batched
  ``predict``) against the reference that the course notebook used (T full
  eager stochastic passes over the pool), with their ratio;
- the per-job overhead: starting Python, importing TensorFlow, reading and
  verifying the dataset;
- with ``--iteration``, one whole iteration on the real split of seed 0, ours
  (warm start for ``warm_epochs`` = 1, batched Monte-Carlo scoring of the
  38,000-image pool) against the notebook's (a new model trained with early
  stopping, patience 2, then T = 10 eager passes over the pool), by phase,
  with their ratio;
- and, given a finished study folder (``--study``), seconds per iteration by
  phase, peak memory per job from Snakemake's benchmark files and the
  study's total job time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

POOL = 10_000  # pool images scored per timing
TRAIN = 10_000  # training images per timed epoch


def median_seconds(action, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        tic = time.perf_counter()
        action()
        timings.append(time.perf_counter() - tic)
    return statistics.median(timings)


def job_overhead(repeats: int) -> dict[str, float]:
    """Seconds a job pays before it trains: interpreter, TensorFlow, data."""
    steps = {
        "python": "pass",
        "import tensorflow": "import tensorflow",
        "import + read dataset": (
            "import tensorflow; from selftrain import data; "
            "data.load(data.locate(fetch=False))"
        ),
    }
    return {
        name: median_seconds(
            lambda code=code: subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True
            ),
            repeats,
        )
        for name, code in steps.items()
    }


def training_rate(dataset, precision: str, repeats: int) -> float:
    """Training images/s of the course CNN under ``precision``."""
    import keras

    from selftrain import model

    keras.mixed_precision.set_global_policy(precision)
    net = model.build("course")
    images = model.to_input(dataset.train_images[:TRAIN])
    labels = dataset.train_labels[:TRAIN]
    net.fit(images[:1024], labels[:1024], epochs=1, batch_size=128, verbose=0)
    seconds = median_seconds(
        lambda: net.fit(images, labels, epochs=1, batch_size=128, verbose=0), repeats
    )
    keras.mixed_precision.set_global_policy("float32")
    return TRAIN / seconds


def parallel_training_rates() -> dict[str, float]:
    """Images/s trained by the whole machine: one 2-thread job or two 1-thread."""
    rates = {}
    for jobs, threads in ((1, 2), (2, 1)):
        running = [
            subprocess.Popen(
                [sys.executable, __file__, "--training-job", str(threads)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for _ in range(jobs)
        ]
        total = sum(float(job.communicate()[0]) for job in running)
        rates[f"{jobs} job(s) of {threads} thread(s)"] = total
    return rates


def reference_scoring(net, images: np.ndarray, passes: int) -> np.ndarray:
    """Monte-Carlo dropout as the course notebook did it: eager full passes."""
    from selftrain import model

    x = model.to_input(images)
    total = np.zeros((len(x), 10), dtype=np.float32)
    for _ in range(passes):
        for start in range(0, len(x), 256):
            total[start : start + 256] += net(x[start : start + 256], training=True)
    return total / passes


def scoring_rates(dataset, repeats: int) -> dict[str, float]:
    """Pool images/s scored, ours and the reference, for T = 1 and T = 10."""
    from selftrain import model

    net = model.build("course")
    pool = dataset.train_images[-POOL:]
    rates = {}
    for passes in (1, 10):
        model.predict_proba(net, pool[:512], mc_passes=passes)  # warm up
        ours = median_seconds(
            lambda p=passes: model.predict_proba(net, pool, mc_passes=p), repeats
        )
        rates[f"ours, T={passes}"] = POOL / ours
        reference = median_seconds(
            lambda p=passes: reference_scoring(net, pool, p), repeats
        )
        rates[f"reference, T={passes}"] = POOL / reference
    return rates


def iteration_phases(dataset) -> None:
    """One iteration, ours against the notebook's, on seed 0's real split."""
    from selftrain import model

    split = data_split(dataset)
    labeled = dataset.train_images[split.labeled], dataset.train_labels[split.labeled]
    validation = (
        dataset.train_images[split.validation],
        dataset.train_labels[split.validation],
    )
    pool = dataset.train_images[split.pool]

    def timed(action):
        tic = time.perf_counter()
        result = action()
        return result, time.perf_counter() - tic

    phases = {}
    net = model.build("course")
    epochs, phases["reference, train"] = timed(
        lambda: model.train(net, *labeled, validation, 100, 2, 128)
    )
    _, phases["reference, score"] = timed(lambda: reference_scoring(net, pool, 10))
    # Ours continues from that model, as iteration 1 does from iteration 0.
    _, phases["ours, train"] = timed(
        lambda: model.train(net, *labeled, validation, 1, 2, 128)
    )
    _, phases["ours, score"] = timed(lambda: model.predict_proba(net, pool, 10))
    print(
        f"\none iteration, {len(labeled[0]):,} training and {len(pool):,} pool images:"
    )
    print(f"  reference trained {epochs} epochs with early stopping")
    for name, seconds in phases.items():
        print(f"  {name}: {seconds:.1f} s")
    ours = phases["ours, train"] + phases["ours, score"]
    reference = phases["reference, train"] + phases["reference, score"]
    print(
        f"  reference / ours: {reference:.0f} s / {ours:.0f} s "
        f"= {reference / ours:.1f}x"
    )


def data_split(dataset):
    from selftrain import data

    return data.make_split(
        dataset.train_labels, len(dataset.test_labels), 2000, 200, seed=0
    )


def study_figures(study: Path) -> None:
    """Per-phase seconds, peak memory and total time of a finished study."""
    import pandas as pd

    table = pd.read_csv(study / "tables" / "iterations.csv")
    phases = ["seconds_train", "seconds_evaluate", "seconds_score", "job_seconds"]
    table["overhead"] = table["job_seconds"] - table[phases[:3]].sum(axis=1)
    print("\nper iteration (median over the study's jobs):")
    for run, chain in table.groupby("run"):
        medians = chain[[*phases, "overhead", "epochs", "peak_rss_mb"]].median()
        print(
            f"  {run}: train {medians['seconds_train']:.1f} s "
            f"({medians['epochs']:.0f} epochs), evaluate "
            f"{medians['seconds_evaluate']:.1f} s, score "
            f"{medians['seconds_score']:.1f} s, job {medians['job_seconds']:.1f} s "
            f"of which overhead {medians['overhead']:.1f} s; peak memory "
            f"{medians['peak_rss_mb']:.0f} MB (max {chain['peak_rss_mb'].max():.0f}, "
            f"first {chain['peak_rss_mb'].iloc[0]:.0f}, last "
            f"{chain['peak_rss_mb'].iloc[-1]:.0f})"
        )
    print(
        f"  all jobs together: {table['job_seconds'].sum() / 60:.1f} min "
        f"for {len(table)} iterations"
    )
    # From the first step's output to the PDF: the study's wall time.
    started = (study / "data" / "dataset.json").stat().st_mtime
    finished = (study / "report" / "report.pdf").stat().st_mtime
    print(f"  wall time, dataset check to PDF: {(finished - started) / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--study", type=Path, help="a finished study's results/")
    parser.add_argument(
        "--iteration", action="store_true", help="time one whole iteration too"
    )
    parser.add_argument(
        "--training-job", type=int, metavar="THREADS", help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    from selftrain import data, model, provenance

    if args.training_job:
        # One of parallel_training_rates' jobs: print its images/s, nothing else.
        model.configure(threads=args.training_job, precision="float32")
        dataset = data.load(data.locate(fetch=False))
        print(training_rate(dataset, "float32", repeats=2))
        return

    print(f"machine: {provenance.machine()}")
    print(f"CPU features: {provenance.cpu_features()}")
    print("\nper-job overhead (median seconds):")
    for name, seconds in job_overhead(args.repeats).items():
        print(f"  {name}: {seconds:.2f} s")

    model.configure(threads=2, precision="float32")
    dataset = data.load(data.locate(fetch=False))
    print("\ntraining, course CNN, batch 128 (images/s):")
    for precision in ("float32", "mixed_bfloat16"):
        rate = training_rate(dataset, precision, args.repeats)
        print(f"  {precision}: {rate:,.0f}")

    print("\ntraining, course CNN, the whole machine (images/s):")
    for name, rate in parallel_training_rates().items():
        print(f"  {name}: {rate:,.0f}")

    print(f"\npool scoring, {POOL:,} images (images/s):")
    rates = scoring_rates(dataset, args.repeats)
    for name, rate in rates.items():
        print(f"  {name}: {rate:,.0f}")
    for passes in (1, 10):
        ratio = rates[f"ours, T={passes}"] / rates[f"reference, T={passes}"]
        print(f"  ours / reference at T={passes}: {ratio:.1f}x")

    if args.iteration:
        iteration_phases(dataset)
    if args.study:
        study_figures(args.study)


if __name__ == "__main__":
    main()
