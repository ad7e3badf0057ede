"""Draw the report's figures from the study's tables."""

import logging
from pathlib import Path

import pandas as pd

from selftrain.logs import to_file

to_file(snakemake.log[0])  # noqa: F821

from selftrain import data  # noqa: E402
from selftrain.report.figures import draw_all  # noqa: E402

sm = snakemake  # noqa: F821
tables = {
    name: pd.read_csv(sm.input[name])
    for name in ("iterations", "summary", "selections", "timing")
}
tables["final_predictions"] = pd.read_csv(sm.input.predictions)
dataset = data.load(data.read_source(sm.input.dataset))
written = draw_all(
    tables, dataset.test_images, Path(sm.output.svg[0]).parent, sm.params.language
)
logging.info("%d figure files written", len(written))
