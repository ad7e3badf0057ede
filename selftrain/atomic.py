"""Write outputs so that a file either is complete or does not exist.

Everything is written under a temporary name beside its target and renamed
onto it once complete; a rename within one folder is atomic, so a job killed
mid-write never leaves a file that looks finished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and rename it onto ``path``.

    The temporary name keeps the target's suffix (Keras and NumPy look at
    it). If the block raises, the temporary file is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text)


def write_json(payload: dict, path: str | os.PathLike) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically."""
    write_text(json.dumps(payload, indent=2) + "\n", path)


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``frame`` without its index to ``path`` atomically."""
    with replacing(path) as tmp:
        frame.to_csv(tmp, index=False)
