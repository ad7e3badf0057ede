rule tabulate_study:
    input:
        metrics=all_metrics(),
        benchmarks=all_benchmarks(),
        selections=all_selections(),
    output:
        iterations=report(
            "results/tables/iterations.csv",
            category="Tables",
            labels={"table": "iterations"},
        ),
        per_class="results/tables/per_class.csv",
        selections="results/tables/selections.csv",
        summary="results/tables/summary.csv",
        timing=report(
            "results/tables/timing.csv", category="Tables", labels={"table": "timing"}
        ),
    log:
        "logs/tabulate_study.log",
    conda:
        "../../environment.yml"
    script:
        "../../scripts/tabulate_study.py"


rule export_classifier:
    input:
        last_checkpoints(),
        iterations="results/tables/iterations.csv",
        dataset="results/data/dataset.json",
        splits=expand("results/splits/seed{seed}.npz", seed=config["seeds"]),
    output:
        model="results/final/model.keras",
        metadata="results/final/classifier.json",
        predictions="results/tables/final_predictions.csv",
    log:
        "logs/export_classifier.log",
    conda:
        "../../environment.yml"
    script:
        "../../scripts/export_classifier.py"


rule plot_figures:
    input:
        iterations="results/tables/iterations.csv",
        summary="results/tables/summary.csv",
        selections="results/tables/selections.csv",
        timing="results/tables/timing.csv",
        predictions="results/tables/final_predictions.csv",
        dataset="results/data/dataset.json",
    output:
        svg=report(
            expand("results/figures/{name}.svg", name=FIGURES),
            category="Figures",
        ),
        png=expand("results/figures/{name}.png", name=FIGURES),
    log:
        "logs/plot_figures.log",
    conda:
        "../../environment.yml"
    params:
        language=config["report"]["language"],
    script:
        "../../scripts/plot_figures.py"


rule render_report:
    input:
        tables=multiext(
            "results/tables/",
            "iterations.csv",
            "summary.csv",
            "per_class.csv",
            "selections.csv",
            "timing.csv",
        ),
        figures=expand("results/figures/{name}.svg", name=FIGURES),
        classifier="results/final/classifier.json",
        split=f"results/splits/seed{config['seeds'][0]}.npz",
        first_metrics=first_metrics(),
        template=f"{TEMPLATES}/report.html.j2",
        stylesheet=f"{TEMPLATES}/report.css",
    output:
        html=report("results/report/report.html", category="Report"),
        pdf=report("results/report/report.pdf", category="Report"),
    log:
        "logs/render_report.log",
    conda:
        "../../environment.yml"
    params:
        config=config,
        defaults=get_default_config(),
        repository=Path(workflow.basedir).parent,
    script:
        "../../scripts/render_report.py"
