rule tabulate_iterations:
    input:
        all_metrics(),
    output:
        "results/tables/iterations.csv",
    log:
        "logs/tabulate_iterations.log",
    conda:
        "../../environment.yml"
    script:
        "../../scripts/tabulate_iterations.py"
