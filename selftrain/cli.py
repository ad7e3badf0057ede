"""The ``selftrain`` command.

``selftrain predict`` classifies a user's images with the exported final
classifier (see :mod:`selftrain.export`). TensorFlow is imported only once
there is something to classify, so ``--help`` and input errors answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from selftrain import __version__, images

DEFAULT_MODEL = Path("results/final")
# Images per call to the model; bounds the memory a large IDX file needs.
CHUNK = 4096
# Progress is shown on a terminal from this many images on.
PROGRESS_FROM = 2 * CHUNK
EXIT_OK, EXIT_SOME_FAILED, EXIT_NOTHING = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``selftrain`` command and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="selftrain",
        description="Self-training study of Fashion-MNIST: use its final classifier.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    predict = commands.add_parser(
        "predict",
        help="classify images with the exported classifier",
        description=(
            "Classify photos (PNG, JPEG), Fashion-MNIST IDX files (gzip or not) "
            "and .npy arrays of 28x28 images with the exported classifier. "
            "Photos are made grey, inverted when their background is light, "
            "cropped to the item and shrunk to 28x28; IDX and .npy images are "
            "used as they are. Exit status: 0 all classified, 1 some inputs "
            "failed, 2 nothing classified or the model is unusable."
        ),
    )
    predict.add_argument(
        "inputs",
        nargs="+",
        metavar="IMAGE_OR_DIR",
        help="image or array files, or folders of them (not searched recursively)",
    )
    predict.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        metavar="PATH",
        help="classifier folder or its model.keras (default: %(default)s)",
    )
    predict.add_argument(
        "--top",
        type=_positive_int,
        default=1,
        metavar="K",
        help="show the K most probable classes (default: %(default)s)",
    )
    predict.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="output format on stdout (default: %(default)s)",
    )
    predict.add_argument(
        "--show-input",
        type=Path,
        metavar="DIR",
        help="write each 28x28 image the model saw to DIR as an enlarged PNG",
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the ``selftrain`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        The exit status: 0 all went well, 1 some inputs failed, 2 nothing was
        classified, the model is unusable or the arguments are wrong.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version and usage errors
        return stop.code if isinstance(stop.code, int) else EXIT_NOTHING
    return predict(args)


def _error(message: str) -> None:
    print(f"selftrain predict: {message}", file=sys.stderr)


def predict(args: argparse.Namespace) -> int:
    """Classify the inputs named in ``args`` and print the answers.

    Parameters
    ----------
    args : argparse.Namespace
        ``inputs``, ``model``, ``top``, ``format`` and ``show_input``, as
        parsed by :func:`build_parser`.

    Returns
    -------
    int
        The exit status (see :func:`main`).
    """
    from selftrain.export import ClassifierError

    # Check the classifier's metadata before reading any image.
    try:
        model_file, metadata = read_classifier(args.model)
    except ClassifierError as error:
        _error(str(error))
        return EXIT_NOTHING

    # Read and prepare every input; a bad one is reported and left out.
    files, errors = images.expand(args.inputs)
    for message in errors:
        _error(message)
    names, batches = [], []
    progress = Progress("reading", len(files))
    for done, path in enumerate(files, 1):
        try:
            file_names, file_images = images.read(path, metadata["preprocessing"])
        except images.ImageError as error:
            _error(str(error))
            errors.append(str(error))
        else:
            names += file_names
            batches.append(file_images)
        progress.update(done)
    progress.close()
    if not names:
        _error("nothing to classify.")
        return EXIT_NOTHING
    inputs = np.concatenate(batches)

    # Classify.
    try:
        net = load_model(model_file, metadata)
    except ClassifierError as error:
        _error(str(error))
        return EXIT_NOTHING
    probabilities = classify(net, inputs)

    # Report.
    rows = answers(names, probabilities, metadata, args.top)
    try:
        sys.stdout.write(FORMATTERS[args.format](rows, metadata["uncertain_entropy"]))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader (e.g. `head`) stopped early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if args.show_input is not None:
        try:
            show_inputs(names, inputs, args.show_input)
        except OSError as error:
            _error(f"{args.show_input}: cannot write the inputs ({error.strerror}).")
            errors.append(str(error))
    return EXIT_SOME_FAILED if errors else EXIT_OK


def read_classifier(model: Path) -> tuple[Path, dict]:
    """Return the model file and checked metadata of an exported classifier.

    Raises
    ------
    ClassifierError
        When there is nothing at ``model`` (saying how to make a classifier),
        or it is not a classifier this command can use.
    """
    from selftrain.export import ClassifierError, read_metadata

    if not model.exists():
        how = "`make report` or `snakemake --cores all` writes results/final/"
        raise ClassifierError(
            f"{model}: no classifier here; {how}, or pass --model PATH."
        )
    model_file, metadata = read_metadata(model)
    where = model_file.parent / "classifier.json"
    names = metadata.get("class_names")
    if not (
        isinstance(names, list) and names and all(isinstance(n, str) for n in names)
    ):
        raise ClassifierError(f"{where}: class_names is not a list of names.")
    threshold = metadata.get("uncertain_entropy")
    if not isinstance(threshold, (int, float)) or not threshold >= 0:
        raise ClassifierError(f"{where}: uncertain_entropy is not a number >= 0.")
    try:
        images.check_preprocessing(metadata.get("preprocessing"))
    except ValueError as error:
        raise ClassifierError(f"{where}: unusable preprocessing: {error}.") from None
    return model_file, metadata


def load_model(model_file: Path, metadata: dict):
    """Load the Keras model and check it fits its metadata.

    Raises
    ------
    ClassifierError
        When the file cannot be loaded, or its input or output shape differs
        from the stored image size or number of classes.
    """
    from selftrain import model
    from selftrain.export import ClassifierError

    if not zipfile.is_zipfile(model_file):
        raise ClassifierError(
            f"{model_file}: not a Keras model file (not a zip archive)."
        )
    try:
        with _native_stderr_silenced():
            try:
                model.configure(threads=_usable_cpus(), precision="float32")
            except RuntimeError:
                pass  # TensorFlow already runs here (notebook, tests): keep it as is
            net = model.load(model_file)
    except Exception as error:  # Keras raises many kinds for a damaged file
        raise ClassifierError(
            f"{model_file}: cannot be loaded ({type(error).__name__}: {error})."
        ) from None
    size = (metadata["preprocessing"]["height"], metadata["preprocessing"]["width"])
    expected_in = (None, *size, 1)
    expected_out = (None, len(metadata["class_names"]))
    if tuple(net.input_shape) != expected_in or tuple(net.output_shape) != expected_out:
        raise ClassifierError(
            f"{model_file}: takes {net.input_shape} and gives {net.output_shape}; "
            f"its metadata says {expected_in} and {expected_out}."
        )
    return net


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what TensorFlow's C++ side prints while it starts (CPU and CUDA notes).

    TensorFlow prints them even when ``TF_CPP_MIN_LOG_LEVEL`` is set from
    Python, so the process's stderr file descriptor points at /dev/null
    meanwhile; Python exceptions are unaffected and still reported.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def classify(net, inputs: np.ndarray) -> np.ndarray:
    """Return class probabilities of uint8 ``inputs``, in chunks of ``CHUNK``."""
    from selftrain import model

    progress = Progress("classifying", len(inputs))
    out = []
    for start in range(0, len(inputs), CHUNK):
        out.append(model.predict_proba(net, inputs[start : start + CHUNK]))
        progress.update(start + len(out[-1]))
    progress.close()
    return np.concatenate(out)


def answers(
    names: list[str], probabilities: np.ndarray, metadata: dict, top: int
) -> list[dict]:
    """Return one answer per image: top classes, entropy, uncertainty.

    Parameters
    ----------
    names : list of str
    probabilities : numpy.ndarray of shape (n, n_classes)
    metadata : dict
        The classifier's metadata: ``class_names`` and ``uncertain_entropy``.
    top : int
        How many classes to give, most probable first (at most all of them).

    Returns
    -------
    list of dict
        ``image``, ``classes`` (list of ``{"class", "probability"}``),
        ``entropy`` (nats) and ``uncertain`` (entropy above the threshold).
    """
    from selftrain.selection import entropy

    class_names = metadata["class_names"]
    threshold = metadata["uncertain_entropy"]
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
    entropies = entropy(probabilities)
    return [
        {
            "image": name,
            "classes": [
                {"class": class_names[k], "probability": round(float(row[k]), 6)}
                for k in ranking
            ],
            "entropy": round(float(h), 6),
            "uncertain": bool(h > threshold),
        }
        for name, row, ranking, h in zip(
            names, probabilities, order, entropies, strict=True
        )
    ]


def format_table(rows: list[dict], threshold: float) -> str:
    """Return the answers as an aligned text table for people."""
    lines = [
        (
            row["image"],
            ", ".join(f"{c['class']} {c['probability']:.2f}" for c in row["classes"]),
            f"{row['entropy']:.2f}",
            "uncertain" if row["uncertain"] else "",
        )
        for row in rows
    ]
    header = ("image", "class probability", "entropy", "")
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(3)]
    text = [
        "  ".join(
            (image.ljust(widths[0]), classes.ljust(widths[1]), h.rjust(widths[2]), mark)
        ).rstrip()
        for image, classes, h, mark in [header, *lines]
    ]
    if any(row["uncertain"] for row in rows):
        text.append(
            f"uncertain: entropy above {threshold:.2f} nats, the classifier's "
            "threshold set on validation images."
        )
    return "\n".join(text) + "\n"


def format_json(rows: list[dict], threshold: float) -> str:
    """Return the answers as a JSON list, one object per image."""
    return json.dumps(rows, indent=2) + "\n"


def format_csv(rows: list[dict], threshold: float) -> str:
    """Return the answers as CSV: image, class_i and probability_i, entropy."""
    top = len(rows[0]["classes"]) if rows else 1
    fields = ["image"]
    for i in range(1, top + 1):
        fields += [f"class_{i}", f"probability_{i}"]
    fields += ["entropy", "uncertain"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        ranked = [v for c in row["classes"] for v in (c["class"], c["probability"])]
        writer.writerow(
            [row["image"], *ranked, row["entropy"], str(row["uncertain"]).lower()]
        )
    return buffer.getvalue()


FORMATTERS = {"table": format_table, "json": format_json, "csv": format_csv}


def show_inputs(names: list[str], inputs: np.ndarray, folder: Path) -> None:
    """Write each model input to ``folder`` as an enlarged PNG.

    Files are numbered in output order, then named after their input, e.g.
    ``0003-shoe.jpg.png`` or ``0004-t10k-images-idx3-ubyte.gz_7.png``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    width = len(str(len(names)))
    for number, (name, image) in enumerate(zip(names, inputs, strict=True), 1):
        safe = re.sub(r"[^\w.-]+", "_", Path(name).name).strip("_")
        images.to_png(image, folder / f"{number:0{width}d}-{safe}.png")


class Progress:
    """A one-line count on stderr, shown only on a terminal for many items."""

    def __init__(self, what: str, total: int):
        self.what, self.total = what, total
        self.shown = total >= PROGRESS_FROM and sys.stderr.isatty()
        self.step = max(1, total // 100)

    def update(self, done: int) -> None:
        """Show that ``done`` of the items are finished."""
        if self.shown and (done % self.step == 0 or done == self.total):
            print(f"\r{self.what}: {done}/{self.total}", end="", file=sys.stderr)

    def close(self) -> None:
        """End the progress line."""
        if self.shown:
            print(file=sys.stderr)
