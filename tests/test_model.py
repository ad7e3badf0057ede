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
