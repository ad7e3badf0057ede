"""Find, verify and read Fashion-MNIST, and split it for self-training.

The dataset is the four IDX files of Fashion-MNIST, gzip-compressed. Each
file's decompressed content is checked against a known SHA-256 before any
array is built from it, so a truncated or altered file never reaches a model.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selftrain.atomic import replacing, write_json

log = logging.getLogger(__name__)

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
MIRROR_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DOWNLOAD_TIMEOUT_S = 30

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
N_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (28, 28)
TRAIN_PER_CLASS = 6000  # every class has exactly this many training images


@dataclass(frozen=True)
class IdxFile:
    """One file of the dataset: its name, expected shape and content hash."""

    name: str
    shape: tuple[int, ...]
    sha256: str

    @property
    def ndim(self) -> int:
        return len(self.shape)


FILES = {
    "train_images": IdxFile(
        "train-images-idx3-ubyte.gz",
        (60000, 28, 28),
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train_labels": IdxFile(
        "train-labels-idx1-ubyte.gz",
        (60000,),
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "test_images": IdxFile(
        "t10k-images-idx3-ubyte.gz",
        (10000, 28, 28),
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "test_labels": IdxFile(
        "t10k-labels-idx1-ubyte.gz",
        (10000,),
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}


class DatasetError(RuntimeError):
    """The dataset cannot be found or one of its files is not what it should be."""


@dataclass(frozen=True)
class Dataset:
    """Fashion-MNIST as uint8 arrays, exactly as published."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    directory: Path


def keras_cache_dir() -> Path:
    """Return the folder where Keras keeps Fashion-MNIST (``$KERAS_HOME`` aware)."""
    home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(home) / "datasets" / "fashion-mnist"


def candidate_dirs(config_dir: str | os.PathLike | None = None) -> list[Path]:
    """Return the folders searched for the dataset, in order of preference.

    Parameters
    ----------
    config_dir : path-like, optional
        The folder named by ``data.dir`` in the config, searched first.

    Returns
    -------
    list of Path
        ``data.dir``, ``$SELFTRAIN_DATA``, the Debian package's folder and the
        Keras cache, leaving out those that are not set.
    """
    dirs = []
    if config_dir:
        dirs.append(Path(config_dir))
    if os.environ.get("SELFTRAIN_DATA"):
        dirs.append(Path(os.environ["SELFTRAIN_DATA"]))
    dirs += [DEBIAN_DIR, keras_cache_dir()]
    return dirs


def _has_all_files(directory: Path) -> bool:
    return all((directory / f.name).is_file() for f in FILES.values())


def download(directory: Path, url: str = MIRROR_URL) -> None:
    """Download the four files from the Fashion-MNIST mirror into ``directory``.

    Each file is written under a temporary name and renamed once complete, so
    an interrupted download never leaves a file that looks finished.

    Raises
    ------
    OSError
        When the mirror cannot be reached or a transfer fails.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for spec in FILES.values():
        target = directory / spec.name
        if target.is_file():
            continue
        log.info("downloading %s%s", url, spec.name)
        with urllib.request.urlopen(url + spec.name, timeout=DOWNLOAD_TIMEOUT_S) as r:
            with tempfile.NamedTemporaryFile(dir=directory, delete=False) as out:
                shutil.copyfileobj(r, out)
        os.replace(out.name, target)


def locate(config_dir: str | os.PathLike | None = None, fetch: bool = True) -> Path:
    """Return the first folder that holds all four dataset files.

    Parameters
    ----------
    config_dir : path-like, optional
        ``data.dir`` from the config; searched first.
    fetch : bool
        Download into the Keras cache when no folder has the files.

    Returns
    -------
    Path
        The folder holding the four ``.gz`` files (not yet verified).

    Raises
    ------
    DatasetError
        When no folder has the files and they cannot be downloaded. The
        message lists every folder searched and how to provide the files.
    """
    searched = candidate_dirs(config_dir)
    for directory in searched:
        if _has_all_files(directory):
            return directory

    cache = keras_cache_dir()
    if fetch:
        try:
            download(cache)
            return cache
        except (OSError, urllib.error.URLError) as error:
            reason = f"downloading from {MIRROR_URL} failed ({error})"
    else:
        reason = "downloading was not allowed"

    names = ", ".join(f.name for f in FILES.values())
    where = "\n".join(f"  - {d}" for d in searched)
    raise DatasetError(
        f"Fashion-MNIST was not found and {reason}.\nSearched:\n{where}\n"
        f"Provide the four files ({names}) in one folder and set `data.dir` in "
        "config.yaml or the SELFTRAIN_DATA environment variable to it; on Debian, "
        "`apt-get install dataset-fashion-mnist` installs them."
    )


def read_idx(path: Path, spec: IdxFile) -> np.ndarray:
    """Read one gzip-compressed IDX file after verifying its content.

    Parameters
    ----------
    path : Path
        The ``.gz`` file.
    spec : IdxFile
        What the file must contain: shape and SHA-256 of the decompressed bytes.

    Returns
    -------
    numpy.ndarray
        uint8 array of ``spec.shape``.

    Raises
    ------
    DatasetError
        Naming the file and the fault: missing, not gzip, truncated, wrong IDX
        magic, wrong size, or content that differs from the published file.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: file is missing.")
    try:
        with gzip.open(path, "rb") as stream:
            raw = stream.read()
    except EOFError:
        raise DatasetError(
            f"{path}: file is truncated (gzip stream ends early)."
        ) from None
    except (OSError, zlib.error) as error:
        raise DatasetError(f"{path}: not a readable gzip file ({error}).") from None

    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DatasetError(f"{path}: not an IDX file of unsigned bytes (bad magic).")
    ndim = raw[3]
    if ndim != spec.ndim:
        raise DatasetError(
            f"{path}: IDX file has {ndim} dimensions, expected {spec.ndim}."
        )
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    expected = header + int(np.prod(spec.shape))
    if shape != spec.shape or len(raw) != expected:
        raise DatasetError(
            f"{path}: wrong size: header says {shape} and {len(raw)} bytes were "
            f"read; expected {spec.shape} in {expected} bytes."
        )
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise DatasetError(
            f"{path}: content differs from the published Fashion-MNIST file "
            f"(SHA-256 {digest}, expected {spec.sha256}); replace the file."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(spec.shape)


def load(directory: str | os.PathLike) -> Dataset:
    """Read and verify all four files in ``directory``.

    Parameters
    ----------
    directory : path-like
        Folder holding the four ``.gz`` files.

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        When any file is missing or wrong (see :func:`read_idx`).
    """
    directory = Path(directory)
    arrays = {key: read_idx(directory / f.name, f) for key, f in FILES.items()}
    return Dataset(directory=directory, **arrays)


class SplitError(ValueError):
    """The requested split sizes cannot be drawn from the dataset."""


@dataclass(frozen=True)
class Split:
    """Indices of one seeded split.

    ``labeled``, ``validation`` and ``pool`` index the training images and are
    disjoint; ``test`` indexes the official test images, used only to evaluate.
    """

    labeled: np.ndarray
    validation: np.ndarray
    pool: np.ndarray
    test: np.ndarray
    seed: int

    def save(self, path: str | os.PathLike) -> None:
        """Write the split to ``path`` (``.npz``) through a temporary file."""
        with replacing(path) as tmp:
            np.savez(tmp, **self._arrays(), seed=self.seed)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Split:
        """Read a split written by :meth:`save`."""
        with np.load(path) as f:
            return cls(
                labeled=f["labeled"],
                validation=f["validation"],
                pool=f["pool"],
                test=f["test"],
                seed=int(f["seed"]),
            )

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "labeled": self.labeled,
            "validation": self.validation,
            "pool": self.pool,
            "test": self.test,
        }


def check_split_sizes(
    labeled_per_class: int,
    validation_per_class: int,
    pool_size: int | None = None,
    test_size: int | None = None,
    per_class: int = TRAIN_PER_CLASS,
    n_test: int = 10000,
) -> int:
    """Check that a split of these sizes exists and return the pool size.

    Raises
    ------
    SplitError
        With a message that names the setting at fault and its allowed range.
    """
    if labeled_per_class < 1:
        raise SplitError(
            f"data.labeled_per_class is {labeled_per_class}; it must be at least 1."
        )
    if validation_per_class < 1:
        raise SplitError(
            f"data.validation_per_class is {validation_per_class}; "
            "it must be at least 1."
        )
    left = per_class - labeled_per_class - validation_per_class
    if left < 0:
        raise SplitError(
            f"data.labeled_per_class ({labeled_per_class}) plus "
            f"data.validation_per_class ({validation_per_class}) exceeds the "
            f"{per_class} training images each class has; lower them."
        )
    available = left * N_CLASSES
    if available == 0:
        raise SplitError(
            "the split leaves no images for the unlabelled pool; lower "
            "data.labeled_per_class or data.validation_per_class."
        )
    if pool_size is not None and not 1 <= pool_size:
        raise SplitError(f"data.pool_size is {pool_size}; it must be at least 1.")
    if test_size is not None and not 1 <= test_size <= n_test:
        raise SplitError(
            f"data.test_size is {test_size}; it must be between 1 and {n_test}."
        )
    return available if pool_size is None else min(pool_size, available)


def make_split(
    train_labels: np.ndarray,
    n_test: int,
    labeled_per_class: int,
    validation_per_class: int,
    seed: int,
    pool_size: int | None = None,
    test_size: int | None = None,
) -> Split:
    """Draw a seeded, stratified split of the training images.

    Parameters
    ----------
    train_labels : numpy.ndarray
        Labels of the training images.
    n_test : int
        Number of official test images.
    labeled_per_class, validation_per_class : int
        Images of each class that keep their labels for training, and for
        validation (early stopping and every choice made from scores).
    seed : int
        Seeds the draw; the same seed always gives the same split.
    pool_size : int, optional
        Keep only this many of the remaining images as the unlabelled pool
        (for small studies); all of them when omitted.
    test_size : int, optional
        Evaluate on this many test images, the same ones for every seed; all
        of them when omitted.

    Returns
    -------
    Split

    Raises
    ------
    SplitError
        When the sizes are impossible for these labels.

    Examples
    --------
    >>> labels = np.repeat(np.arange(10), 6)
    >>> split = make_split(labels, 10, 2, 1, seed=0)
    >>> len(split.labeled), len(split.validation), len(split.pool)
    (20, 10, 30)
    """
    classes, counts = np.unique(train_labels, return_counts=True)
    check_split_sizes(
        labeled_per_class,
        validation_per_class,
        pool_size,
        test_size,
        per_class=int(counts.min()),
        n_test=n_test,
    )
    rng = np.random.default_rng(seed)
    labeled, validation, pool = [], [], []
    for c in classes:
        members = rng.permutation(np.flatnonzero(train_labels == c))
        labeled.append(members[:labeled_per_class])
        validation.append(members[labeled_per_class:][:validation_per_class])
        pool.append(members[labeled_per_class + validation_per_class :])
    pool = np.concatenate(pool)
    if pool_size is not None and pool_size < len(pool):
        pool = rng.choice(pool, size=pool_size, replace=False)

    # The test subset does not depend on the seed, so every seed is scored on
    # the same images.
    test = np.arange(n_test)
    if test_size is not None and test_size < n_test:
        test = np.random.default_rng(0).choice(n_test, size=test_size, replace=False)

    return Split(
        labeled=np.sort(np.concatenate(labeled)),
        validation=np.sort(np.concatenate(validation)),
        pool=np.sort(pool),
        test=np.sort(test),
        seed=seed,
    )


def write_source(config_dir: str | os.PathLike | None, path: str | os.PathLike) -> Path:
    """Locate and verify the dataset, then record its folder in ``path`` (JSON).

    Later jobs read the folder from this record (:func:`read_source`) instead
    of searching again, so every job of a study uses the same files.
    """
    directory = locate(config_dir)
    load(directory)
    log.info("Fashion-MNIST verified in %s", directory)
    record = {
        "directory": str(directory.resolve()),
        "sha256": {f.name: f.sha256 for f in FILES.values()},
    }
    write_json(record, path)
    return directory


def read_source(path: str | os.PathLike) -> Path:
    """Return the dataset folder recorded by :func:`write_source`."""
    return Path(json.loads(Path(path).read_text())["directory"])
