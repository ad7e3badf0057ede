rule run_iteration:
    input:
        unpack(get_previous_iteration),
        dataset="results/data/dataset.json",
        split="results/splits/seed{seed}.npz",
    output:
        model="results/runs/{run}/seed{seed}/iter{iteration}/model.keras",
        selected="results/runs/{run}/seed{seed}/iter{iteration}/selected.csv",
        pseudo_labels="results/runs/{run}/seed{seed}/iter{iteration}/pseudo_labels.csv",
        predictions="results/runs/{run}/seed{seed}/iter{iteration}/predictions.npz",
        metrics="results/runs/{run}/seed{seed}/iter{iteration}/metrics.json",
    log:
        "logs/run_iteration/{run}/seed{seed}/iter{iteration}.log",
    benchmark:
        "results/benchmarks/run_iteration/{run}/seed{seed}/iter{iteration}.tsv"
    conda:
        "../../environment.yml"
    threads: config["threads"]
    resources:
        **get_cluster_resources(),
        mem_mb=get_iteration_mem_mb,
        runtime=get_iteration_runtime,
    params:
        settings=get_run_settings,
        select_next=get_select_next,
        config_hash=get_config_hash,
    script:
        "../../scripts/run_iteration.py"
