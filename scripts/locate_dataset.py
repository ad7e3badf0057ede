"""Find Fashion-MNIST, verify its four files and record where they are."""

from selftrain.logs import to_file

to_file(snakemake.log[0])  # noqa: F821

from selftrain import data  # noqa: E402

data.write_source(snakemake.params.dir, snakemake.output[0])  # noqa: F821
