from selftrain import study

study.validate(config, workflow.source_path("../schemas/config.schema.yaml"))


wildcard_constraints:
    run="[A-Za-z0-9_-]+",
    seed=r"\d+",
    iteration=r"\d+",


def iteration_dir(run, seed, iteration):
    return f"results/runs/{run}/seed{seed}/iter{iteration}"


def all_metrics():
    return [
        f"{iteration_dir(run, seed, i)}/metrics.json"
        for run in config["runs"]
        for seed in config["seeds"]
        for i in range(study.planned_iterations(config, run) + 1)
    ]


def get_previous_iteration(wildcards):
    iteration = int(wildcards.iteration)
    if iteration == 0:
        return {}
    folder = iteration_dir(wildcards.run, wildcards.seed, iteration - 1)
    return {
        "model": f"{folder}/model.keras",
        "pseudo_labels": f"{folder}/pseudo_labels.csv",
        "metrics": f"{folder}/metrics.json",
    }


def get_run_settings(wildcards):
    return study.run_settings(config, wildcards.run)


def get_select_next(wildcards):
    return int(wildcards.iteration) < study.planned_iterations(config, wildcards.run)


def get_config_hash(wildcards):
    return study.config_hash(config, wildcards.run)
