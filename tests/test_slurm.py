"""The tiny study on a real one-node SLURM cluster, through profiles/slurm.

The test starts munged, slurmctld and slurmd on this machine (see
tests/slurm/), runs the study with the SLURM profile, and checks that every
training iteration ran as its own SLURM job, with the resources of the
config's ``cluster`` section, and computed exactly what a local run with the
same config computes. It needs root and the Debian packages slurm-wlm and
munge (.ci/run installs them) and is skipped without them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from .conftest import ROOT, SNAKEMAKE
from .slurm.cluster import PREFIX, TRAINING_PARTITION, LocalSlurm, unusable

pytestmark = pytest.mark.slurm

ITERATIONS = 2  # the course run of tests/configs/tiny.yaml
MEM_MB, RUNTIME_MIN = 1024, 10
TIMEOUT_S = 900

# The SLURM profile, with what a cluster without accounting needs (squeue for
# job status, no account), the first status check after 1 s instead of 40 s,
# job logs kept for the checks below, and no retries to hide a failure.
SLURM_ARGS = (
    "--workflow-profile",
    str(ROOT / "profiles" / "slurm"),
    "--slurm-status-command",
    "squeue",
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "2",
    "--slurm-keep-successful-logs",
    "--restart-times",
    "0",
)
SUBMITTED = re.compile(
    r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\."
)
ITERATION = re.compile(r"wildcards: run=course, seed=0, iteration=(\d+)")


@pytest.fixture(scope="module")
def slurm_cluster():
    """A one-node SLURM cluster, stopped (jobs cancelled) after the tests."""
    reason = unusable()
    if reason:
        pytest.skip(reason)
    pytest.importorskip(
        "snakemake_executor_plugin_slurm",
        reason="snakemake-executor-plugin-slurm is missing: pip install -e '.[slurm]'",
    )

    # Not under pytest's tmp_path: munged wants every folder above its socket
    # searchable by all users, and pytest's base folder is private.
    root = Path(tempfile.mkdtemp(prefix=PREFIX, dir="/tmp"))
    cluster = LocalSlurm(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def logs_on_failure(cluster: LocalSlurm, workdir: Path):
    """On any failure, print the daemons' logs and the SLURM jobs' logs."""
    try:
        yield
    except BaseException:
        print(cluster.logs(), file=sys.stderr)
        for path in sorted(workdir.glob(".snakemake/slurm_logs/**/*.log")):
            tail = "\n".join(path.read_text(errors="replace").splitlines()[-40:])
            print(f"----- {path.relative_to(workdir)}\n{tail}", file=sys.stderr)
        raise


def write_config(workdir: Path) -> None:
    """The tiny study's course run alone, deterministic, in ``workdir``."""
    config = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    config["runs"] = {"course": config["runs"]["course"]}
    config["training"]["determinism"] = True
    config["cluster"] = {
        "partition": TRAINING_PARTITION,
        "iteration_mem_mb": MEM_MB,
        "iteration_runtime": RUNTIME_MIN,
    }
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def start_snakemake(workdir: Path, *args: str, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        [*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen, what: str) -> str:
    """Wait for a Snakemake run; return its stderr, or fail with its end."""
    try:
        _, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        pytest.fail(f"{what} took over {TIMEOUT_S} s:\n{stderr[-6000:]}")
    if process.returncode != 0:
        pytest.fail(f"{what} failed:\n{stderr[-6000:]}")
    return stderr


def iteration_dir(workdir: Path, i: int) -> Path:
    return workdir / "results" / "runs" / "course" / "seed0" / f"iter{i}"


def test_study_on_slurm_matches_a_local_run(slurm_cluster, tmp_path):
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    write_config(slurm_dir)
    write_config(local_dir)

    with logs_on_failure(slurm_cluster, slurm_dir):
        # the local run alongside, for the outputs to compare
        local = start_snakemake(
            local_dir,
            "--cores",
            "1",
            *[
                f"results/runs/course/seed0/iter{i}/metrics.json"
                for i in range(ITERATIONS + 1)
            ],
        )
        try:
            started = time.monotonic()
            log = finish(
                start_snakemake(slurm_dir, *SLURM_ARGS, env=slurm_cluster.env),
                "snakemake --workflow-profile profiles/slurm",
            )
            seconds = time.monotonic() - started
            finish(local, "the local run")
        finally:
            if local.poll() is None:
                os.killpg(local.pid, signal.SIGKILL)
                local.wait()

        # one SLURM job per iteration, none for the light (local) rules
        submitted = SUBMITTED.findall(log)
        jobs = slurm_cluster.jobs()
        assert set(jobs) == {slurm_id for _, slurm_id, _ in submitted}, log[-4000:]
        ran = []
        for _, slurm_id, slurm_log in submitted:
            job = jobs[slurm_id]
            assert job["JobState"] == "COMPLETED", job
            assert "rule_run_iteration" in job["Comment"]
            ran += set(ITERATION.findall(Path(slurm_log).read_text()))
        assert sorted(map(int, ran)) == list(range(ITERATIONS + 1))

        # with what the config's cluster section asks for
        for job in jobs.values():
            assert job["Partition"] == TRAINING_PARTITION
            assert job["TimeLimit"] == f"00:{RUNTIME_MIN}:00"
            assert job["MinMemoryNode"] == f"{MEM_MB // 1024}G"
            assert job["NumCPUs"] == "1"  # threads: 1 in the tiny config
        for name in ("report.html", "report.pdf"):
            assert (slurm_dir / "results" / "report" / name).stat().st_size > 0

        # the same seed computes the same chain, to the last bit
        for i in range(ITERATIONS + 1):
            on_slurm, at_home = iteration_dir(slurm_dir, i), iteration_dir(local_dir, i)
            pd.testing.assert_frame_equal(
                pd.read_csv(on_slurm / "selected.csv"),
                pd.read_csv(at_home / "selected.csv"),
            )
            metrics = [
                json.loads((d / "metrics.json").read_text())
                for d in (on_slurm, at_home)
            ]
            assert metrics[0]["n_train"] == metrics[1]["n_train"]
            for split in ("validation", "test"):
                assert metrics[0][split] == metrics[1][split]
            with (
                np.load(on_slurm / "predictions.npz") as a,
                np.load(at_home / "predictions.npz") as b,
            ):
                for name in a.files:
                    np.testing.assert_array_equal(a[name], b[name])
    run_times = ", ".join(job["RunTime"] for job in jobs.values())
    print(f"study on SLURM: {seconds:.0f} s; its SLURM jobs ran {run_times}")
