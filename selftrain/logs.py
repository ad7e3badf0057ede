"""Logging for workflow jobs and the command line."""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def to_file(path: str | os.PathLike) -> None:
    """Send this process's stderr, Python logging included, to ``path``.

    The file descriptor itself is redirected, so messages that TensorFlow
    writes from C++ land in the same log as the job's own lines.
    """
    stream = open(path, "a", buffering=1)  # noqa: SIM115 -- lives with the process
    os.dup2(stream.fileno(), sys.stderr.fileno())
    sys.stderr = stream
    logging.basicConfig(level=logging.INFO, format=FORMAT, stream=stream, force=True)
