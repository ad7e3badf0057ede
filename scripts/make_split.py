"""Draw the seeded, stratified labelled / validation / pool split."""

import logging

from selftrain.logs import to_file

to_file(snakemake.log[0])  # noqa: F821

from selftrain import data  # noqa: E402

options = snakemake.params.data  # noqa: F821
dataset = data.load(data.read_source(snakemake.input.dataset))  # noqa: F821
split = data.make_split(
    dataset.train_labels,
    len(dataset.test_labels),
    options["labeled_per_class"],
    options["validation_per_class"],
    seed=int(snakemake.wildcards.seed),  # noqa: F821
    pool_size=options["pool_size"],
    test_size=options["test_size"],
)
split.save(snakemake.output[0])  # noqa: F821
logging.info(
    "seed %d: %d labelled, %d validation, %d pool, %d test images",
    split.seed,
    len(split.labeled),
    len(split.validation),
    len(split.pool),
    len(split.test),
)
