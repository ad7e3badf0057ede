"""Fill the report template from a finished study; write HTML and PDF."""

import logging
from pathlib import Path

from selftrain.logs import to_file

to_file(snakemake.log[0])  # noqa: F821

from selftrain.report.render import render_study  # noqa: E402

sm = snakemake  # noqa: F821
context = render_study(
    tables_dir=Path(sm.input.tables[0]).parent,
    figures=sm.input.figures,
    classifier=sm.input.classifier,
    split=sm.input.split,
    first_metrics=sm.input.first_metrics,
    config=sm.params.config,
    defaults=sm.params.defaults,
    template_dir=Path(sm.input.template).parent,
    repository=sm.params.repository,
    html_path=sm.output.html,
    pdf_path=sm.output.pdf,
)
logging.info(
    "report written with %d figures and %d observations",
    len(context["figures"]),
    len(context["observations"]),
)
