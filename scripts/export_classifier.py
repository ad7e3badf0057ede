"""Choose the final classifier by validation F1 and export it with its metadata."""

import logging
from pathlib import Path

import pandas as pd

from selftrain.logs import to_file

to_file(snakemake.log[0])  # noqa: F821

from selftrain import data, export, study  # noqa: E402
from selftrain.report.tables import choose_final  # noqa: E402

sm = snakemake  # noqa: F821
chosen = choose_final(pd.read_csv(sm.input.iterations))
split = data.Split.load(
    next(p for p in sm.input.splits if Path(p).stem == f"seed{chosen['seed']}")
)
export.export_final(
    chosen,
    study.CHECKPOINT_PATTERN,
    data.load(data.read_source(sm.input.dataset)),
    split,
    Path(sm.output.metadata).parent,
    sm.output.predictions,
)
logging.info(
    "final classifier: run %s, seed %d, iteration %d (validation F1 %.4f)",
    chosen["run"],
    chosen["seed"],
    chosen["iteration"],
    chosen["validation_f1_weighted"],
)
