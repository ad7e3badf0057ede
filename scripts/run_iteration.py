"""Run one self-training iteration: train, evaluate, score the pool, select."""

from pathlib import Path

from selftrain.logs import to_file

to_file(snakemake.log[0])  # noqa: F821

from selftrain import data, iteration  # noqa: E402

sm = snakemake  # noqa: F821
inputs = dict(sm.input)
paths = iteration.IterationPaths.in_folder(
    Path(sm.output.metrics).parent,
    split=sm.input.split,
    dataset=data.read_source(sm.input.dataset),
    previous=Path(inputs["metrics"]).parent if "metrics" in inputs else None,
    followed=inputs.get("followed"),
)
iteration.run(
    paths,
    run_name=sm.wildcards.run,
    iteration=int(sm.wildcards.iteration),
    settings=sm.params.settings,
    seed=int(sm.wildcards.seed),
    select_next=sm.params.select_next,
    threads=sm.threads,
    config_hash=sm.params.config_hash,
)
