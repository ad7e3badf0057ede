"""The `selftrain predict` command on a real (briefly trained) classifier."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selftrain import cli, images

N_PHOTOS = 30


@pytest.fixture(scope="module")
def classifier(fashion, tmp_path_factory) -> Path:
    """A classifier folder: the course CNN trained 1 epoch on 3,000 images."""
    from selftrain import export, model

    model.configure(threads=2, precision="float32", seed=0)
    net = model.build("course")
    order = np.random.default_rng(0).permutation(len(fashion.train_labels))
    train, validation = order[:3000], order[3000:4000]
    validation = (fashion.train_images[validation], fashion.train_labels[validation])
    model.train(
        net,
        fashion.train_images[train],
        fashion.train_labels[train],
        validation,
        max_epochs=1,
        patience=1,
        batch_size=64,
    )
    folder = tmp_path_factory.mktemp("classifier")
    model.save(net, folder / "trained.keras")
    export.export(
        folder / "trained.keras",
        folder / "final",
        model.predict_proba(net, validation[0]),
        validation[1],
        source={"run": "test", "seed": 0, "iteration": 0},
    )
    return folder / "final"


def predict(capsys, *args) -> tuple[int, str, str]:
    """Run `selftrain predict ARGS` in this process; return code, stdout, stderr."""
    code = cli.main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def save_photo(image: np.ndarray, path: Path, dark_on_light: bool) -> Path:
    """Save a 28x28 image as a 112x112 photo, optionally dark on light."""
    pixels = 255 - image if dark_on_light else image
    Image.fromarray(pixels).resize((112, 112), Image.Resampling.LANCZOS).save(path)
    return path


def write_idx(array: np.ndarray, path: Path) -> Path:
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def classes(stdout: str) -> dict[str, str]:
    """Map each image to its top class, from JSON output."""
    return {row["image"]: row["classes"][0]["class"] for row in json.loads(stdout)}


def test_help_does_not_import_tensorflow():
    script = shutil.which("selftrain", path=Path(sys.executable).parent)
    if script is None:
        pytest.skip("the selftrain console script is not installed")
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    result = subprocess.run(
        [script, "predict", "--help"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0
    assert "IMAGE_OR_DIR" in result.stdout and "--show-input" in result.stdout
    assert "tensorflow" not in result.stderr  # the import-time report


def test_usage_errors_exit_2(capsys):
    code, out, err = predict(capsys, "--top", "0", "shoe.png")
    assert (code, out) == (2, "")
    assert "--top: 0 is below 1" in err


def test_photos_round_trip(classifier, fashion, tmp_path, capsys):
    raw = fashion.test_images[:N_PHOTOS]
    np.save(tmp_path / "raw.npy", raw)
    for i, image in enumerate(raw):
        save_photo(image, tmp_path / f"{i:02d}-light.png", dark_on_light=False)
        save_photo(image, tmp_path / f"{i:02d}-dark.jpg", dark_on_light=True)

    code, out, err = predict(
        capsys, tmp_path, "--model", classifier, "--format", "json"
    )

    assert (code, err) == (0, "")
    answer = classes(out)
    assert len(answer) == 3 * N_PHOTOS
    assert list(answer)[:3] == [
        str(tmp_path / n) for n in ("00-dark.jpg", "00-light.png", "01-dark.jpg")
    ]
    light = [answer[str(tmp_path / f"{i:02d}-light.png")] for i in range(N_PHOTOS)]
    dark = [answer[str(tmp_path / f"{i:02d}-dark.jpg")] for i in range(N_PHOTOS)]
    exact = [answer[f"{tmp_path / 'raw.npy'}[{i}]"] for i in range(N_PHOTOS)]
    assert np.mean(np.array(light) == dark) >= 0.8
    assert np.mean(np.array(light) == exact) >= 0.8


def test_idx_and_npy_inputs_are_used_as_they_are(classifier, fashion, tmp_path, capsys):
    raw = fashion.test_images[:5]
    write_idx(raw, tmp_path / "five-idx3-ubyte")
    write_idx(raw, tmp_path / "five-idx3-ubyte.gz")
    np.save(tmp_path / "float01.npy", raw / 255.0)
    np.save(tmp_path / "float255.npy", raw.astype(np.float32))
    np.save(tmp_path / "single.npy", raw[0])

    code, out, err = predict(capsys, tmp_path, "--model", classifier, "--format", "csv")

    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    by_file: dict[str, list] = {}
    for row in rows:
        name = Path(row["image"]).name
        by_file.setdefault(name.split("[")[0], []).append((name, row["probability_1"]))
    assert [n for n, _ in by_file["five-idx3-ubyte.gz"]] == [
        f"five-idx3-ubyte.gz[{i}]" for i in range(5)
    ]
    expected = [p for _, p in by_file["five-idx3-ubyte"]]
    for name in ("five-idx3-ubyte.gz", "float01.npy", "float255.npy"):
        assert [p for _, p in by_file[name]] == expected
    assert by_file["single.npy"] == [("single.npy", expected[0])]


def test_output_formats_agree(classifier, fashion, tmp_path, capsys):
    np.save(tmp_path / "some.npy", fashion.test_images[:4])
    threshold = json.loads((classifier / "classifier.json").read_text())[
        "uncertain_entropy"
    ]
    outputs = {}
    for style in ("table", "json", "csv"):
        code, outputs[style], err = predict(
            capsys, tmp_path, "--model", classifier, "--top", 3, "--format", style
        )
        assert (code, err) == (0, "")

    rows = json.loads(outputs["json"])
    for row in rows:
        probabilities = [c["probability"] for c in row["classes"]]
        assert len(probabilities) == 3
        assert probabilities == sorted(probabilities, reverse=True)
        assert row["uncertain"] == (row["entropy"] > threshold)
    table = [r for r in csv.DictReader(io.StringIO(outputs["csv"]))]
    assert [r["class_1"] for r in table] == [r["classes"][0]["class"] for r in rows]
    assert [r["class_3"] for r in table] == [r["classes"][2]["class"] for r in rows]
    lines = outputs["table"].splitlines()
    assert lines[0].split()[:3] == ["image", "class", "probability"]
    for row, line in zip(rows, lines[1:], strict=False):
        assert line.startswith(row["image"]) and row["classes"][0]["class"] in line


def test_show_input_writes_what_the_model_saw(classifier, fashion, tmp_path, capsys):
    raw = fashion.test_images[:2]
    np.save(tmp_path / "pair.npy", raw)
    save_photo(raw[0], tmp_path / "photo.png", dark_on_light=True)
    seen = tmp_path / "seen"

    code, _, err = predict(
        capsys, tmp_path, "--model", classifier, "--show-input", seen
    )

    assert (code, err) == (0, "")
    written = sorted(p.name for p in seen.iterdir())
    assert written == ["1-pair.npy_0.png", "2-pair.npy_1.png", "3-photo.png.png"]
    for name, image in zip(written, raw, strict=False):
        big = np.asarray(Image.open(seen / name))
        assert big.shape == (224, 224)
        assert np.array_equal(big[::8, ::8], image)
    photo = np.asarray(Image.open(seen / written[2]))[::8, ::8]
    border = np.concatenate([photo[0], photo[-1], photo[:, 0], photo[:, -1]])
    assert np.median(border) < 30 and photo.max() > 200  # light item on black


@pytest.fixture
def bad_inputs(tmp_path) -> dict[str, Path]:
    """One file or folder of each kind that cannot be classified."""
    photo = io.BytesIO()
    Image.new("L", (64, 64), 255).save(photo, "PNG")
    bad = {
        "truncated": tmp_path / "truncated.png",
        "empty": tmp_path / "empty.png",
        "text": tmp_path / "notes.png",
        "folder": tmp_path / "nothing_here",
        "missing": tmp_path / "missing.jpg",
        "short_idx": tmp_path / "short-idx3-ubyte",
    }
    bad["truncated"].write_bytes(photo.getvalue()[:60])
    bad["empty"].write_bytes(b"")
    bad["text"].write_text("not a picture\n")
    bad["folder"].mkdir()
    bad["short_idx"].write_bytes(bytes([0, 0, 8, 3]) + b"\x00\x00\x00\x05" * 3)
    return bad


def test_bad_inputs_are_named_and_the_rest_classified(
    classifier, fashion, tmp_path, capsys, bad_inputs
):
    good = save_photo(fashion.test_images[0], tmp_path / "good.png", False)

    code, out, err = predict(capsys, *bad_inputs.values(), good, "--model", classifier)

    assert code == 1
    assert str(good) in out and len(out.splitlines()) == 2  # header and one row
    lines = err.splitlines()
    assert len(lines) == len(bad_inputs)
    for path, reason in [
        (bad_inputs["truncated"], "truncated"),
        (bad_inputs["empty"], "empty"),
        (bad_inputs["text"], "not a PNG, JPEG, IDX or .npy"),
        (bad_inputs["folder"], "no PNG, JPEG, IDX or .npy files"),
        (bad_inputs["missing"], "no such file"),
        (bad_inputs["short_idx"], "truncated"),
    ]:
        assert sum(str(path) in line and reason in line for line in lines) == 1


def test_only_bad_inputs_exit_2(classifier, capsys, bad_inputs):
    code, out, err = predict(capsys, *bad_inputs.values(), "--model", classifier)
    assert (code, out) == (2, "")
    assert err.splitlines()[-1].endswith("nothing to classify.")


def test_unusable_models_exit_2(classifier, tmp_path, capsys, monkeypatch):
    image = tmp_path / "x.npy"
    np.save(image, np.zeros((28, 28), np.uint8))
    no_metadata = tmp_path / "no_metadata"
    no_metadata.mkdir()
    shutil.copy(classifier / "model.keras", no_metadata)
    wrong_format = tmp_path / "wrong_format"
    shutil.copytree(classifier, wrong_format)
    (wrong_format / "classifier.json").write_text('{"format": "other/9"}')
    not_keras = tmp_path / "not_keras"
    shutil.copytree(classifier, not_keras)
    (not_keras / "model.keras").write_text("junk")

    for model, reason in [
        (no_metadata, "classifier.json is missing"),
        (wrong_format, "format is not selftrain-classifier/1"),
        (not_keras / "model.keras", "not a Keras model file"),
    ]:
        code, out, err = predict(capsys, image, "--model", model)
        assert (code, out) == (2, "")
        assert len(err.splitlines()) == 1 and reason in err

    monkeypatch.chdir(tmp_path)
    code, _, err = predict(capsys, image)
    assert code == 2 and "make report" in err and "results/final" in err


def test_photo_is_inverted_cropped_and_centred():
    canvas = np.full((200, 300), 250, np.uint8)
    canvas[50:150, 100:150] = 20  # a dark 100x50 item on white
    preprocessing = {
        "height": 28,
        "width": 28,
        "channels": 1,
        "foreground": "light",
        "scale": 1 / 255,
    }

    seen = images.prepare_photo(Image.fromarray(canvas), preprocessing)

    assert seen.dtype == np.uint8 and seen.shape == (28, 28)
    assert seen[:, 14].min() > 200  # the item fills the height
    assert seen[14, :5].max() < 30 and seen[14, -5:].max() < 30  # centred
    assert abs(int(seen[14, :14].sum()) - int(seen[14, 14:].sum())) < 300
