"""Build, train and score the CNN classifiers.

TensorFlow is imported inside :func:`configure` and the functions that need
it, so that importing :mod:`selftrain` stays cheap.
"""

from __future__ import annotations

import logging
import math
import os
import time

import numpy as np

from selftrain.atomic import replacing
from selftrain.data import IMAGE_SHAPE, N_CLASSES

log = logging.getLogger(__name__)

ARCHITECTURES = ("course", "wide_bn")
# Native bfloat16 matrix units; with AVX512-BF16 alone, bfloat16 measured
# slower than float32 for this CNN.
BF16_CPU_FLAGS = ("amx_bf16",)


def cpu_flags() -> set[str]:
    """Return the CPU feature flags of this machine (empty where unknown)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(precision: str, has_gpu: bool = False) -> str:
    """Turn the configured precision into a Keras dtype policy name.

    ``auto`` picks ``mixed_bfloat16`` on a CPU with AMX bfloat16 units and
    ``float32`` everywhere else.
    """
    if precision != "auto":
        return precision
    if not has_gpu and cpu_flags() & set(BF16_CPU_FLAGS):
        return "mixed_bfloat16"
    return "float32"


def configure(
    threads: int, precision: str = "auto", seed: int = 0, determinism: bool = False
) -> dict:
    """Set up TensorFlow for one job; call before building any model.

    Parameters
    ----------
    threads : int
        Threads TensorFlow may use for one operation (the job's ``threads``).
    precision : {"auto", "float32", "mixed_bfloat16"}
        Compute precision; softmax outputs stay float32 in every case.
    seed : int
        Seeds Python, NumPy and TensorFlow.
    determinism : bool
        Ask TensorFlow for deterministic kernels (slower, bit-identical runs).

    Returns
    -------
    dict
        What was chosen: ``device``, ``precision``, ``threads``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:
        # TensorFlow already runs in this process (a notebook, a test suite):
        # its thread pools are fixed now, so keep them.
        threads = tf.config.threading.get_intra_op_parallelism_threads()
        log.info("TensorFlow was already set up: keeping %d threads", threads)
    gpus = tf.config.list_physical_devices("GPU")
    keras.utils.set_random_seed(seed)
    if determinism:
        tf.config.experimental.enable_op_determinism()
    policy = resolve_precision(precision, has_gpu=bool(gpus))
    keras.mixed_precision.set_global_policy(policy)
    return {"device": "GPU" if gpus else "CPU", "precision": policy, "threads": threads}


def build(architecture: str = "course", learning_rate: float = 1e-3):
    """Build and compile a CNN for 28x28 grey images and 10 classes.

    Parameters
    ----------
    architecture : {"course", "wide_bn"}
        ``course``: two 3x3 convolutions (32, 64 filters), 2x2 max pooling,
        dropout 0.25, dense 128, dropout 0.5, softmax. ``wide_bn``: two blocks
        of two batch-normalised 3x3 convolutions (32 then 64 filters), each
        block max-pooled, then dense 256 with dropout 0.5.
    learning_rate : float
        Adam's learning rate.

    Returns
    -------
    keras.Model
    """
    import keras
    from keras import layers

    if architecture == "course":
        body = [
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
        ]
    elif architecture == "wide_bn":
        body = []
        for filters in (32, 64):
            for _ in range(2):
                body += [
                    layers.Conv2D(filters, 3, padding="same", use_bias=False),
                    layers.BatchNormalization(),
                    layers.Activation("relu"),
                ]
            body.append(layers.MaxPooling2D(2))
        body += [
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.5),
        ]
    else:
        raise ValueError(
            f"unknown architecture {architecture!r}; choose one of "
            f"{', '.join(ARCHITECTURES)}."
        )

    model = keras.Sequential(
        [
            keras.Input(shape=(*IMAGE_SHAPE, 1)),
            *body,
            # Probabilities stay float32 under mixed precision.
            layers.Dense(N_CLASSES, activation="softmax", dtype="float32"),
        ],
        name=architecture,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def describe(model) -> dict:
    """Return the model's name, parameter count and layers, for the report."""
    return {
        "name": model.name,
        "parameters": int(model.count_params()),
        "layers": [
            {
                "type": type(layer).__name__,
                "output_shape": list(layer.output.shape[1:]),
                "parameters": int(layer.count_params()),
            }
            for layer in model.layers
        ],
    }


def load(path: str | os.PathLike):
    """Load a model written by :func:`save`."""
    import keras

    return keras.saving.load_model(path)


def save(model, path: str | os.PathLike) -> None:
    """Save ``model`` to ``path`` (``.keras``) through a temporary file."""
    with replacing(path) as tmp:
        model.save(tmp)


def to_input(images: np.ndarray) -> np.ndarray:
    """Scale uint8 images (n, 28, 28) to the model's float32 input (n, 28, 28, 1)."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def cosine_rate(base: float, epoch: int, epochs: int) -> float:
    """Return the learning rate of ``epoch`` (0-based) of ``epochs`` on a cosine.

    It starts at ``base`` and falls towards zero at the end of the budget; a
    warm-started job starts again from ``base`` (a warm restart).
    """
    return base * 0.5 * (1 + math.cos(math.pi * epoch / epochs))


def augmented_batches(
    images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, shift: int = 2
):
    """Return a shuffled ``tf.data`` stream of randomly shifted and flipped batches.

    Each image moves by up to ``shift`` whole pixels in each direction (the
    border filled with black, the background of Fashion-MNIST) and is mirrored
    left-right with probability one half: garments keep their class under both.
    The stream is reproducible: ``seed`` fixes the order and every draw.
    """
    import tensorflow as tf

    def augment(example, draw):
        x, y = example
        padded = tf.pad(x, [[shift, shift], [shift, shift], [0, 0]])
        x = tf.image.stateless_random_crop(
            padded, tf.shape(x), seed=tf.stack([draw, seed])
        )
        x = tf.image.stateless_random_flip_left_right(
            x, seed=tf.stack([draw, seed + 1])
        )
        return x, y

    examples = tf.data.Dataset.from_tensor_slices((to_input(images), labels)).shuffle(
        len(images), seed=seed, reshuffle_each_iteration=True
    )
    # One random number per position; the order changes each epoch, so every
    # image meets new draws.
    draws = tf.data.Dataset.random(seed=seed)
    return (
        tf.data.Dataset.zip((examples, draws))
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def train(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    max_epochs: int,
    patience: int,
    batch_size: int,
    augment: bool = False,
    schedule: str = "constant",
    learning_rate: float | None = None,
    seed: int = 0,
) -> int:
    """Fit with early stopping on validation loss; return the epochs run.

    The weights of the epoch with the lowest validation loss are kept.

    Parameters
    ----------
    model : keras.Model
        A compiled model, new or warm-started.
    images, labels : numpy.ndarray
        Training images (uint8, n x 28 x 28) and their labels.
    validation : tuple of numpy.ndarray
        Images and labels that early stopping watches.
    max_epochs, patience, batch_size : int
        Epoch budget, epochs without improvement before stopping, batch size.
    augment : bool
        Train on randomly shifted and mirrored copies (see
        :func:`augmented_batches`).
    schedule : {"constant", "cosine"}
        ``cosine`` lowers the learning rate from ``learning_rate`` towards zero
        over ``max_epochs`` (see :func:`cosine_rate`).
    learning_rate : float, optional
        The rate to train at (the starting rate of the cosine schedule); the
        optimizer's own rate when omitted.
    seed : int
        Seeds the shuffling and augmentation stream.

    Returns
    -------
    int
    """
    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            log.info(
                "epoch %d: loss %.4f, val_loss %.4f, val_accuracy %.4f, "
                "learning rate %.2g, %.1f s",
                epoch + 1,
                logs["loss"],
                logs["val_loss"],
                logs["val_accuracy"],
                float(self.model.optimizer.learning_rate),
                time.perf_counter() - self.start,
            )

    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        ),
        EpochLog(),
    ]
    if learning_rate is not None:
        # A warm-started model may continue at another rate than it ended.
        model.optimizer.learning_rate = learning_rate
    if schedule == "cosine":
        base = float(model.optimizer.learning_rate)
        callbacks.append(
            keras.callbacks.LearningRateScheduler(
                lambda epoch: cosine_rate(base, epoch, max_epochs)
            )
        )
    elif schedule != "constant":
        raise ValueError(f"unknown schedule {schedule!r}; use constant or cosine.")
    if augment:
        # The stream shuffles itself.
        inputs = {"x": augmented_batches(images, labels, batch_size, seed)}
        inputs["shuffle"] = False
    else:
        inputs = {"x": to_input(images), "y": labels, "batch_size": batch_size}
    history = model.fit(
        **inputs,
        validation_data=(to_input(validation[0]), validation[1]),
        epochs=max_epochs,
        callbacks=callbacks,
        verbose=0,
    )
    return len(history.history["loss"])


def predict_proba(
    model, images: np.ndarray, mc_passes: int = 1, batch_size: int = 2048
) -> np.ndarray:
    """Return class probabilities, optionally averaged over Monte-Carlo dropout.

    With ``mc_passes > 1`` dropout stays active and the probabilities are the
    mean of that many stochastic passes. Two things keep this cheap:

    - everything before the first dropout layer is deterministic, so it runs
      once per batch and only the rest of the network is sampled;
    - each pass draws one dropout mask per batch, shared by the images of
      that batch. Every image still averages ``mc_passes`` independent masks,
      so its estimate has the same distribution as with masks of its own,
      while drawing random numbers, which dominated the cost, becomes
      negligible.

    Parameters
    ----------
    model : keras.Sequential
    images : numpy.ndarray of uint8, shape (n, 28, 28)
    mc_passes : int
        1 for a plain deterministic prediction.
    batch_size : int

    Returns
    -------
    numpy.ndarray of float32, shape (n, n_classes)
    """
    import keras
    import tensorflow as tf

    if len(images) == 0:
        return np.zeros((0, N_CLASSES), dtype=np.float32)
    if mc_passes <= 1:
        return model.predict(to_input(images), batch_size=batch_size, verbose=0)

    first_dropout = next(
        i
        for i, layer in enumerate(model.layers)
        if isinstance(layer, keras.layers.Dropout)
    )
    trunk, head = model.layers[:first_dropout], model.layers[first_dropout:]

    def dropout(h, rate, n):
        """Drop the same units of every image in the batch, per pass."""
        per_pass = tf.reshape(h, tf.concat([[mc_passes, n], tf.shape(h)[1:]], 0))
        mask_shape = tf.concat([[mc_passes, 1], tf.shape(h)[1:]], 0)
        keep = tf.cast(tf.random.uniform(mask_shape) >= rate, h.dtype)
        return tf.reshape(per_pass * keep / (1 - rate), tf.shape(h))

    @tf.function(reduce_retracing=True)
    def sample(x):
        for layer in trunk:
            x = layer(x, training=False)
        # All passes in one batch: the head's matrix products run larger.
        n = tf.shape(x)[0]
        h = tf.tile(x, [mc_passes] + [1] * (len(x.shape) - 1))
        for layer in head:
            if isinstance(layer, keras.layers.Dropout):
                h = dropout(h, layer.rate, n)
            else:
                h = layer(h, training=False)
        h = tf.reshape(tf.cast(h, tf.float32), [mc_passes, n, -1])
        return tf.reduce_mean(h, axis=0)

    step = max(1, batch_size // mc_passes)
    out = [
        sample(tf.constant(to_input(images[start : start + step]))).numpy()
        for start in range(0, len(images), step)
    ]
    return np.concatenate(out)
