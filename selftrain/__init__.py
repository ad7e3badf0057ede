"""Reproducible studies of self-training (pseudo-labelling) for image classification."""

__version__ = "0.1.0"
