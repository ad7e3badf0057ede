"""The CNN's Monte-Carlo dropout scoring and precision choice."""

from __future__ import annotations

import numpy as np
import pytest

from selftrain import model


def train_one_epoch(net, fashion, n_train: int, n_validation: int) -> int:
    """Fit ``net`` for one epoch on the first real training images."""
    return model.train(
        net,
        fashion.train_images[:n_train],
        fashion.train_labels[:n_train],
        (
            fashion.train_images[-n_validation:],
            fashion.train_labels[-n_validation:],
        ),
        max_epochs=1,
        patience=1,
        batch_size=128,
    )


@pytest.fixture(scope="module")
def trained(fashion):
    model.configure(threads=2, precision="float32", seed=0)
    net = model.build("course")
    train_one_epoch(net, fashion, 2000, 500)
    return net


def test_monte_carlo_scores_are_probabilities_near_the_plain_ones(trained, fashion):
    images = fashion.test_images[:300]
    plain = model.predict_proba(trained, images)
    sampled = model.predict_proba(trained, images, mc_passes=20)
    assert sampled.shape == plain.shape == (300, 10)
    assert np.allclose(sampled.sum(axis=1), 1, atol=1e-4)
    assert not np.allclose(sampled, plain)  # dropout was active
    assert (sampled.argmax(axis=1) == plain.argmax(axis=1)).mean() > 0.9


def test_each_image_sees_independent_masks_across_passes(trained, fashion):
    import keras

    images = fashion.test_images[:200]
    keras.utils.set_random_seed(3)
    one = model.predict_proba(trained, images, mc_passes=2)
    keras.utils.set_random_seed(3)
    again = model.predict_proba(trained, images, mc_passes=2)
    many = model.predict_proba(trained, images, mc_passes=50)
    assert np.array_equal(one, again)  # seeded
    plain = model.predict_proba(trained, images)
    # More passes average out the noise: closer to the plain prediction.
    assert np.abs(many - plain).mean() < np.abs(one - plain).mean()


def test_scores_do_not_depend_on_the_batch_size(trained, fashion):
    images = fashion.test_images[:300]
    small = model.predict_proba(trained, images, batch_size=64)
    large = model.predict_proba(trained, images, batch_size=4096)
    assert np.allclose(small, large, atol=1e-5)


def test_bfloat16_only_where_the_cpu_has_amx(monkeypatch):
    monkeypatch.setattr(model, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert model.resolve_precision("auto") == "float32"
    monkeypatch.setattr(model, "cpu_flags", lambda: {"amx_bf16", "amx_tile"})
    assert model.resolve_precision("auto") == "mixed_bfloat16"
    assert model.resolve_precision("auto", has_gpu=True) == "float32"
    assert model.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"


def test_the_wider_batch_normalised_model_trains_and_samples(fashion):
    model.configure(threads=2, precision="float32", seed=0)
    net = model.build("wide_bn")
    assert net.count_params() > model.build("course").count_params() // 2
    assert train_one_epoch(net, fashion, 512, 128) == 1
    sampled = model.predict_proba(net, fashion.test_images[:64], mc_passes=4)
    assert np.allclose(sampled.sum(axis=1), 1, atol=1e-4)


def test_an_unknown_architecture_names_the_known_ones():
    with pytest.raises(ValueError, match="course, wide_bn"):
        model.build("resnet")


def test_the_cosine_schedule_falls_from_the_base_rate_towards_zero():
    rates = [model.cosine_rate(1e-3, epoch, 10) for epoch in range(10)]
    assert rates[0] == pytest.approx(1e-3)
    assert rates[5] == pytest.approx(5e-4)
    assert all(a > b for a, b in zip(rates[:-1], rates[1:], strict=True))
    assert 0 < rates[-1] < 1e-4


def test_augmentation_changes_every_epoch_but_keeps_each_image_and_its_label(
    fashion,
):
    images = fashion.train_images[:256]
    # Each image's index as its label shows where every image went.
    index = np.arange(256)
    batches = list(model.augmented_batches(images, index, batch_size=64, seed=1))
    assert [len(y) for _, y in batches] == [64] * 4
    seen = np.concatenate([y.numpy() for _, y in batches])
    assert sorted(seen) == index.tolist()  # every image once...
    assert not np.array_equal(seen, index)  # ...in a shuffled order
    augmented = np.concatenate([x.numpy() for x, _ in batches])
    originals = model.to_input(images)[seen]
    assert augmented.shape == originals.shape == (256, 28, 28, 1)
    changed = [not np.allclose(a, o) for a, o in zip(augmented, originals, strict=True)]
    assert np.mean(changed) > 0.9
    # A shift of at most 2 pixels keeps nearly all of each garment's ink.
    ink = augmented.sum(axis=(1, 2, 3)) / originals.sum(axis=(1, 2, 3))
    assert np.median(ink) > 0.9
    again = list(model.augmented_batches(images, index, batch_size=64, seed=1))
    assert np.array_equal(batches[0][0].numpy(), again[0][0].numpy())  # seeded


def test_training_runs_at_the_given_rate_or_its_cosine(fashion):
    model.configure(threads=2, precision="float32", seed=0)
    images, labels = fashion.train_images[:512], fashion.train_labels[:512]
    validation = fashion.train_images[-256:], fashion.train_labels[-256:]
    net = model.build("course", learning_rate=1e-3)
    model.train(net, images, labels, validation, 1, 1, 128, learning_rate=3e-4)
    assert float(net.optimizer.learning_rate) == pytest.approx(3e-4)
    model.train(
        net,
        images,
        labels,
        validation,
        2,
        2,
        128,
        schedule="cosine",
        learning_rate=1e-3,
    )
    assert float(net.optimizer.learning_rate) == pytest.approx(5e-4)
