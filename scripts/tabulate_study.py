"""Gather every iteration's metrics, benchmark and selection into tables."""

import logging

from selftrain.logs import to_file

to_file(snakemake.log[0])  # noqa: F821

from selftrain.report.tables import write_tables  # noqa: E402

sm = snakemake  # noqa: F821
tables = write_tables(
    sm.input.metrics, sm.input.benchmarks, sm.input.selections, dict(sm.output)
)
iterations = tables["iterations"]
logging.info(
    "%d iterations of %d runs and %d seeds tabulated",
    len(iterations),
    iterations["run"].nunique(),
    iterations["seed"].nunique(),
)
