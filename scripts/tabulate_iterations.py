"""Gather every iteration's metrics into one table."""

import logging

from selftrain.logs import to_file

to_file(snakemake.log[0])  # noqa: F821

from selftrain import tables  # noqa: E402
from selftrain.atomic import write_csv  # noqa: E402

metrics = tables.read_metrics(snakemake.input)  # noqa: F821
table = tables.iteration_table(metrics)
write_csv(table, snakemake.output[0])  # noqa: F821
logging.info("%d rows from %d runs", len(table), table["run"].nunique())
