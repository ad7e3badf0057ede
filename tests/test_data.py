"""Reading, verifying and locating Fashion-MNIST; building splits."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from selftrain import data

LABELS = data.FILES["test_labels"]


def test_real_files_read_with_published_shapes(fashion):
    assert fashion.train_images.shape == (60000, 28, 28)
    assert fashion.test_images.shape == (10000, 28, 28)
    assert fashion.train_images.dtype == np.uint8
    assert np.bincount(fashion.train_labels).tolist() == [6000] * 10
    assert np.bincount(fashion.test_labels).tolist() == [1000] * 10


@pytest.fixture
def raw_labels(dataset_dir) -> bytes:
    """Decompressed bytes of the real test-label file (small: 10,008 bytes)."""
    with gzip.open(dataset_dir / LABELS.name) as f:
        return f.read()


def write_gz(path, raw: bytes):
    path.write_bytes(gzip.compress(raw))
    return path


def test_missing_file_is_named(tmp_path):
    with pytest.raises(data.DatasetError, match=r"t10k-labels.*missing"):
        data.read_idx(tmp_path / LABELS.name, LABELS)


def test_truncated_gzip_is_reported(tmp_path, dataset_dir):
    whole = (dataset_dir / LABELS.name).read_bytes()
    path = tmp_path / LABELS.name
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(data.DatasetError, match=r"t10k-labels.*truncated"):
        data.read_idx(path, LABELS)


def test_file_that_is_not_gzip_is_reported(tmp_path):
    path = tmp_path / LABELS.name
    path.write_bytes(b"this is not a gzip stream at all")
    with pytest.raises(data.DatasetError, match="not a readable gzip file"):
        data.read_idx(path, LABELS)


def test_wrong_magic_is_reported(tmp_path, raw_labels):
    path = write_gz(tmp_path / LABELS.name, b"\x00\x00\x0d" + raw_labels[3:])
    with pytest.raises(data.DatasetError, match="bad magic"):
        data.read_idx(path, LABELS)


def test_short_content_is_reported_as_wrong_size(tmp_path, raw_labels):
    path = write_gz(tmp_path / LABELS.name, raw_labels[:-100])
    with pytest.raises(data.DatasetError, match="wrong size"):
        data.read_idx(path, LABELS)


def test_tampered_content_fails_the_hash(tmp_path, raw_labels):
    tampered = bytearray(raw_labels)
    tampered[-1] = (tampered[-1] + 1) % 10
    path = write_gz(tmp_path / LABELS.name, bytes(tampered))
    with pytest.raises(data.DatasetError, match=r"SHA-256 .*replace the file"):
        data.read_idx(path, LABELS)


def test_load_stops_at_the_first_bad_file(tmp_path, dataset_dir):
    for spec in data.FILES.values():
        shutil.copy(dataset_dir / spec.name, tmp_path / spec.name)
    (tmp_path / data.FILES["train_labels"].name).write_bytes(b"")
    with pytest.raises(data.DatasetError, match="train-labels"):
        data.load(tmp_path)


def test_locate_prefers_config_dir_then_environment(tmp_path, monkeypatch):
    config_dir, env_dir = tmp_path / "config", tmp_path / "env"
    for folder in (config_dir, env_dir):
        folder.mkdir()
        for spec in data.FILES.values():
            (folder / spec.name).touch()
    monkeypatch.setenv("SELFTRAIN_DATA", str(env_dir))
    assert data.locate(config_dir, fetch=False) == config_dir
    assert data.locate(None, fetch=False) == env_dir


def test_locate_reads_the_keras_cache_from_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("SELFTRAIN_DATA", raising=False)
    assert data.keras_cache_dir() == tmp_path / "datasets" / "fashion-mnist"
    assert data.candidate_dirs()[-1] == data.keras_cache_dir()


def test_locate_offline_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian-package")
    monkeypatch.setattr(data, "MIRROR_URL", "http://127.0.0.1:9/")
    monkeypatch.delenv("SELFTRAIN_DATA", raising=False)
    with pytest.raises(data.DatasetError) as error:
        data.locate(tmp_path / "empty")
    message = str(error.value)
    assert "downloading from http://127.0.0.1:9/ failed" in message
    assert str(tmp_path / "empty") in message
    assert str(tmp_path / "keras") in message
    assert "SELFTRAIN_DATA" in message and "dataset-fashion-mnist" in message
    # Nothing half-downloaded is left to be taken for a dataset next time.
    cache = tmp_path / "keras" / "datasets" / "fashion-mnist"
    assert not any(cache.glob("*.gz"))


def split_of(labels, seed=0, **sizes):
    options = {"labeled_per_class": 20, "validation_per_class": 5, **sizes}
    return data.make_split(labels, 10000, seed=seed, **options)


def test_split_sizes_are_stratified_and_disjoint(fashion):
    split = split_of(fashion.train_labels)
    labels = fashion.train_labels
    assert np.bincount(labels[split.labeled]).tolist() == [20] * 10
    assert np.bincount(labels[split.validation]).tolist() == [5] * 10
    assert len(split.pool) == 60000 - 250
    together = np.concatenate([split.labeled, split.validation, split.pool])
    assert len(np.unique(together)) == len(together) == 60000
    assert len(split.test) == 10000


def test_split_is_determined_by_its_seed(fashion, tmp_path):
    first = split_of(fashion.train_labels, seed=3, pool_size=500, test_size=100)
    first.save(tmp_path / "split.npz")
    again = data.Split.load(tmp_path / "split.npz")
    other = split_of(fashion.train_labels, seed=4, pool_size=500, test_size=100)
    for name in ("labeled", "validation", "pool", "test"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.labeled, other.labeled)
    assert np.array_equal(first.test, other.test)  # the same test images per seed
    assert len(first.pool) == 500 and len(first.test) == 100


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"labeled_per_class": 0}, "labeled_per_class is 0"),
        ({"validation_per_class": -1}, "validation_per_class is -1"),
        ({"labeled_per_class": 5999}, "exceeds the 6000 training images"),
        (
            {"labeled_per_class": 5000, "validation_per_class": 1000},
            "leaves no images for the unlabelled pool",
        ),
        ({"test_size": 20000}, "test_size is 20000"),
    ],
)
def test_impossible_split_sizes_are_refused(fashion, sizes, message):
    with pytest.raises(data.SplitError, match=message):
        split_of(fashion.train_labels, **sizes)
