rule locate_dataset:
    output:
        "results/data/dataset.json",
    log:
        "logs/locate_dataset.log",
    conda:
        "../../environment.yml"
    params:
        dir=config["data"]["dir"],
    script:
        "../../scripts/locate_dataset.py"


rule make_split:
    input:
        dataset="results/data/dataset.json",
    output:
        "results/splits/seed{seed}.npz",
    log:
        "logs/make_split/seed{seed}.log",
    conda:
        "../../environment.yml"
    params:
        data=config["data"],
    script:
        "../../scripts/make_split.py"
