from pathlib import Path

from selftrain import study
from selftrain.report import FIGURES

SCHEMA = workflow.source_path("../schemas/config.schema.yaml")
study.validate(config, SCHEMA)
study.check_writable("results")

TEMPLATES = config["report"]["templates"] or Path(workflow.basedir).parent / "templates"

# Snakemake tracks each job's script but not the package the script imports.
# A hash of the package's iteration code, a param of every iteration, makes
# Snakemake rerun iterations after a change to what that code does.
CODE_HASH = study.code_hash()


wildcard_constraints:
    run="[A-Za-z0-9_-]+",
    seed=r"\d+",
    iteration=r"\d+",


def iteration_dir(run, seed, iteration):
    return study.CHECKPOINT_PATTERN.format(run=run, seed=seed, iteration=iteration)


def all_iterations():
    return [
        (run, seed, i)
        for run in config["runs"]
        for seed in config["seeds"]
        for i in range(study.planned_iterations(config, run) + 1)
    ]


def all_metrics():
    return [f"{iteration_dir(*it)}/metrics.json" for it in all_iterations()]


def all_selections():
    return [f"{iteration_dir(*it)}/selected.csv" for it in all_iterations()]


def all_benchmarks():
    return [
        f"results/benchmarks/run_iteration/{run}/seed{seed}/iter{i}.tsv"
        for run, seed, i in all_iterations()
    ]


def last_checkpoints():
    return [
        f"{iteration_dir(run, seed, study.planned_iterations(config, run))}/{name}"
        for run in config["runs"]
        for seed in config["seeds"]
        for name in ("model.keras", "predictions.npz")
    ]


def first_metrics():
    seed = config["seeds"][0]
    return [f"{iteration_dir(run, seed, 0)}/metrics.json" for run in config["runs"]]


def get_previous_iteration(wildcards):
    iteration = int(wildcards.iteration)
    inputs = {}
    if iteration > 0:
        folder = iteration_dir(wildcards.run, wildcards.seed, iteration - 1)
        inputs["model"] = f"{folder}/model.keras"
        inputs["pseudo_labels"] = f"{folder}/pseudo_labels.csv"
        inputs["metrics"] = f"{folder}/metrics.json"
    settings = study.run_settings(config, wildcards.run)
    if settings["strategy"] == "oracle":
        folder = iteration_dir(settings["follow"], wildcards.seed, iteration)
        inputs["followed"] = f"{folder}/selected.csv"
    return inputs


def get_run_settings(wildcards):
    return study.run_settings(config, wildcards.run)


def get_select_next(wildcards):
    return int(wildcards.iteration) < study.planned_iterations(config, wildcards.run)


def get_config_hash(wildcards):
    return study.config_hash(config, wildcards.run)


def get_default_config():
    defaults = {}
    study.validate(defaults, SCHEMA)
    return defaults


def get_iteration_mem_mb(wildcards, attempt):
    return config["cluster"]["iteration_mem_mb"] * attempt


def get_iteration_runtime(wildcards, attempt):
    return config["cluster"]["iteration_runtime"] * attempt


def get_cluster_resources():
    """The SLURM resources of a training job that config sets (not null or 0).

    Unset ones are left out, not set to None, so that --default-resources
    (slurm_partition=..., slurm_account=...) still reaches the training jobs.
    """
    cluster = config["cluster"]
    names = {
        "partition": "slurm_partition",
        "account": "slurm_account",
        "gpus": "gpu",
        "slurm_extra": "slurm_extra",
    }
    return {names[key]: cluster[key] for key in names if cluster[key]}
