"""Our engine beside scikit-learn's SelfTrainingClassifier, same CNN, same split.

Run by hand:

    .venv/bin/python benchmarks/sklearn_peer.py [--iterations 3] [--epochs 3]

Both sides refit the course CNN from scratch each round for a fixed number of
epochs on the labelled images plus every pseudo-label so far, and add the
``k`` pool images with the highest top-class probability (scikit-learn's
``criterion="k_best"``). The script prints test weighted F1 after every fit
and the wall time of each side, and their ratio. Ours runs through
``selftrain.iteration.run``, writing its checkpoints as the workflow does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import f1_score
from sklearn.semi_supervised import SelfTrainingClassifier

from selftrain import data, iteration, model, study

SCHEMA = Path(__file__).parents[1] / "workflow" / "schemas" / "config.schema.yaml"


class CourseCNN(ClassifierMixin, BaseEstimator):
    """The course CNN as a scikit-learn classifier of flattened 28x28 images.

    After each ``fit`` it scores the evaluation images it was given, so the
    F1 of every self-training round can be read from ``history_``.
    """

    def __init__(self, epochs=3, batch_size=128, eval_images=None, eval_labels=None):
        self.epochs = epochs
        self.batch_size = batch_size
        self.eval_images = eval_images
        self.eval_labels = eval_labels

    def fit(self, X, y):
        self.classes_ = np.arange(data.N_CLASSES)
        self.net_ = model.build("course")
        images = X.reshape(-1, 28, 28).astype(np.uint8)
        self.net_.fit(
            model.to_input(images),
            y.astype(int),
            epochs=self.epochs,
            batch_size=self.batch_size,
            verbose=0,
        )
        predicted = self.predict(self.eval_images)
        history = getattr(self, "history_", [])
        history.append(
            (len(y), f1_score(self.eval_labels, predicted, average="weighted"))
        )
        self.history_ = history
        return self

    def predict_proba(self, X):
        return model.predict_proba(self.net_, X.reshape(-1, 28, 28).astype(np.uint8))

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)


def run_scikit_learn(dataset, split, args) -> tuple[list, float]:
    index = np.concatenate([split.labeled, split.pool])
    X = dataset.train_images[index].reshape(len(index), -1)
    y = dataset.train_labels[index].astype(int)
    y[len(split.labeled) :] = -1  # unlabelled
    cnn = CourseCNN(
        epochs=args.epochs,
        eval_images=dataset.test_images[split.test].reshape(len(split.test), -1),
        eval_labels=dataset.test_labels[split.test],
    )
    self_training = SelfTrainingClassifier(
        cnn, criterion="k_best", k_best=args.k, max_iter=args.iterations
    )
    tic = time.perf_counter()
    self_training.fit(X, y)
    return self_training.estimator_.history_, time.perf_counter() - tic


def run_ours(dataset, split, args) -> tuple[list, float]:
    config = {
        "training": {"max_epochs": args.epochs, "patience": args.epochs},
        "runs": {
            "peer": {
                "strategy": "max_probability",
                "k": args.k,
                "mc_passes": 1,
                "warm_start": False,
            }
        },
    }
    study.validate(config, SCHEMA)
    settings = study.run_settings(config, "peer")
    history = []
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        split_path = Path(tmp) / "split.npz"
        split.save(split_path)
        previous = None
        for i in range(args.iterations + 1):
            folder = Path(tmp) / f"iter{i}"
            folder.mkdir()
            paths = iteration.IterationPaths.in_folder(
                folder, split_path, dataset.directory, previous=previous
            )
            metrics = iteration.run(
                paths,
                "peer",
                i,
                settings,
                seed=0,
                select_next=i < args.iterations,
                threads=2,
                dataset=dataset,
            )
            history.append((metrics["n_train"], metrics["test"]["f1_weighted"]))
            previous = folder
    return history, time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--k", type=int, default=500)
    args = parser.parse_args()

    model.configure(threads=2, precision="float32", seed=0)
    dataset = data.load(data.locate(fetch=False))
    split = data.make_split(dataset.train_labels, 10000, 2000, 200, seed=0)

    results = {
        "scikit-learn": run_scikit_learn(dataset, split, args),
        "selftrain": run_ours(dataset, split, args),
    }
    print(f"{'fit':>4} {'images':>8} {'scikit-learn F1':>16} {'selftrain F1':>13}")
    peer, ours = results["scikit-learn"][0], results["selftrain"][0]
    for i, ((n, f1_peer), (_, f1_ours)) in enumerate(zip(peer, ours, strict=False)):
        print(f"{i:>4} {n:>8,} {f1_peer:>16.4f} {f1_ours:>13.4f}")
    seconds = {name: wall for name, (_, wall) in results.items()}
    for name, wall in seconds.items():
        print(f"{name}: {wall:.1f} s")
    print(
        f"scikit-learn / selftrain wall time: "
        f"{seconds['scikit-learn'] / seconds['selftrain']:.2f}"
    )


if __name__ == "__main__":
    main()
