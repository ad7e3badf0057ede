"""Read a user's images and turn them into the classifier's input.

Photos (PNG, JPEG) are brought into Fashion-MNIST's form: grey, the item
light on a black background, cropped to the item, centred on a square canvas
and shrunk to the model's size. Fashion-MNIST IDX files and NumPy ``.npy``
arrays are taken to be in that form already and are only checked. Every
function returns uint8 images; the model applies its own scaling.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npy", ".gz", ".idx", ".ubyte")
# A border whose median grey level is above this is a light background.
LIGHT_BACKGROUND = 127
# After levelling (background 0, brightest pixel 255), pixels above this
# belong to the item; it sets the crop.
ITEM_THRESHOLD = 40
# Fashion-MNIST items touch the frame along their longest side (at this
# threshold 84% of the test images do), so the crop gets no extra margin.
MARGIN = 0
# JPEGs are decoded at a reduced scale, never below this many pixels a side.
DECODE_SIZE = 448

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
_NPY = b"\x93NUMPY"
_GZIP = b"\x1f\x8b"
_IDX_UBYTE = b"\x00\x00\x08"


class ImageError(ValueError):
    """A file cannot be turned into classifier input; the message says why."""


def check_preprocessing(preprocessing: dict) -> tuple[int, int]:
    """Check a classifier's stored preprocessing and return its image size.

    Parameters
    ----------
    preprocessing : dict
        The ``preprocessing`` entry of ``classifier.json``.

    Returns
    -------
    tuple of int
        ``(height, width)`` of the model's input.

    Raises
    ------
    ValueError
        When a setting is missing or one this module cannot apply.
    """
    if not isinstance(preprocessing, dict):
        raise ValueError("preprocessing is not a mapping")
    height, width = preprocessing.get("height"), preprocessing.get("width")
    if not all(isinstance(n, int) and n > 0 for n in (height, width)):
        raise ValueError(f"image size {height}x{width} is not a pair of sizes")
    if preprocessing.get("channels") != 1:
        raise ValueError(
            f"{preprocessing.get('channels')} channels; only grey images (1) "
            "are supported"
        )
    if preprocessing.get("foreground") not in ("light", "dark"):
        raise ValueError(
            f"foreground {preprocessing.get('foreground')!r} is neither "
            "'light' nor 'dark'"
        )
    scale = preprocessing.get("scale")
    if not isinstance(scale, (int, float)) or not np.isclose(scale, 1 / 255):
        raise ValueError(f"input scale {scale!r}; only 1/255 is supported")
    return height, width


def expand(paths: list[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Replace each folder by the image and array files directly inside it.

    Parameters
    ----------
    paths : list of path-like
        Files and folders as the user named them.

    Returns
    -------
    files : list of Path
        The named files, and each folder's files in sorted order. A folder's
        hidden files and files of other kinds are left out.
    errors : list of str
        One line per path that does not exist or folder with nothing usable.
    """
    files, errors = [], []
    for path in map(Path, paths):
        if path.is_dir():
            try:
                inside = sorted(p for p in path.iterdir() if not p.name.startswith("."))
            except OSError as error:
                errors.append(f"{path}: cannot list the folder ({error.strerror}).")
                continue
            usable = [p for p in inside if p.is_file() and _has_known_suffix(p)]
            if not usable:
                others = f"{len(inside)} other entries" if inside else "it is empty"
                errors.append(
                    f"{path}: no PNG, JPEG, IDX or .npy files in this folder "
                    f"({others})."
                )
            files += usable
        elif path.exists():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or folder.")
    return files, errors


def _has_known_suffix(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(PHOTO_SUFFIXES + ARRAY_SUFFIXES) or name.endswith("-ubyte")


def read(path: str | os.PathLike, preprocessing: dict) -> tuple[list[str], np.ndarray]:
    """Read one file and return its images in the classifier's input form.

    The kind of file is told from its content, not its name.

    Parameters
    ----------
    path : path-like
        A PNG or JPEG photo, an IDX file of uint8 images (gzip-compressed or
        not), or a ``.npy`` array of shape (h, w) or (n, h, w).
    preprocessing : dict
        The classifier's stored preprocessing (see :func:`check_preprocessing`).

    Returns
    -------
    names : list of str
        ``path`` for a single image; ``path[i]`` for image ``i`` of a file
        holding several.
    images : numpy.ndarray of uint8, shape (n, height, width)

    Raises
    ------
    ImageError
        Naming the file and what is wrong with it.
    """
    path = Path(path)
    size = check_preprocessing(preprocessing)
    try:
        with open(path, "rb") as stream:
            head = stream.read(8)
    except OSError as error:
        raise ImageError(f"{path}: cannot be read ({error.strerror}).") from None
    if not head:
        raise ImageError(f"{path}: the file is empty.")

    if head.startswith((_PNG, _JPEG)):
        photo = open_photo(path)
        try:
            image = prepare_photo(photo, preprocessing)
        except ImageError as error:
            raise ImageError(f"{path}: {error}") from None
        return [str(path)], image[np.newaxis]
    if head.startswith(_NPY):
        images = read_npy(path)
    elif head.startswith((_GZIP, _IDX_UBYTE)):
        images = read_idx(path)
    else:
        raise ImageError(
            f"{path}: not a PNG, JPEG, IDX or .npy file (judged by its content, "
            "not its name)."
        )
    single = images.ndim == 2
    if single:
        images = images[np.newaxis]
    if images.shape[1:] != size:
        raise ImageError(
            f"{path}: holds {images.shape[1]}x{images.shape[2]} images; the "
            f"classifier takes {size[0]}x{size[1]}."
        )
    if len(images) == 0:
        raise ImageError(f"{path}: holds no images.")
    names = [str(path)] if single else [f"{path}[{i}]" for i in range(len(images))]
    return names, images


def open_photo(path: str | os.PathLike) -> Image.Image:
    """Decode a PNG or JPEG into a grey image, upright, on a white background.

    Transparent parts become white, the usual backdrop of product photos;
    a camera's EXIF orientation is applied.

    Raises
    ------
    ImageError
        When the file is not a PNG or JPEG, or is truncated or damaged.
    """
    try:
        with Image.open(path, formats=["PNG", "JPEG"]) as photo:
            photo.draft("L", (DECODE_SIZE, DECODE_SIZE))
            photo.load()
            photo = ImageOps.exif_transpose(photo)
    except Image.DecompressionBombError as error:
        raise ImageError(f"{path}: image too large to decode ({error}).") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        reason = str(error) or type(error).__name__
        if "truncated" in reason.lower():
            reason = "the file is truncated"
        raise ImageError(f"{path}: not a readable PNG or JPEG ({reason}).") from None

    if photo.mode.startswith("I"):  # 16- or 32-bit grey
        values = np.asarray(photo, dtype=np.float64)
        top = 65535 if values.max() > 255 else 255
        photo = Image.fromarray(np.round(values * 255 / top).astype(np.uint8))
    if photo.mode in ("RGBA", "LA", "PA") or "transparency" in photo.info:
        rgba = photo.convert("RGBA")
        photo = Image.new("RGBA", rgba.size, "white")
        photo.alpha_composite(rgba)
    return photo.convert("L")


def prepare_photo(photo: Image.Image, preprocessing: dict) -> np.ndarray:
    """Turn a grey photo of one item into the classifier's input.

    Steps: invert a photo whose border is light, so the item is light on a
    dark background; stretch grey levels so the background is 0 and the
    brightest pixel 255; crop to the pixels above ``ITEM_THRESHOLD``; centre
    the crop on a square canvas; shrink it to the model's size with a Lanczos
    filter; invert the result when the model takes dark items on light.

    Parameters
    ----------
    photo : PIL.Image.Image
        Grey (mode ``L``) image.
    preprocessing : dict
        The classifier's stored preprocessing.

    Returns
    -------
    numpy.ndarray of uint8, shape (height, width)

    Raises
    ------
    ImageError
        When the photo is one flat colour, with no item to crop.
    """
    height, width = check_preprocessing(preprocessing)
    grey = np.asarray(photo, dtype=np.float64)

    # Item light on a dark background.
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > LIGHT_BACKGROUND:
        grey, border = 255 - grey, 255 - border

    # Level: background to 0, brightest pixel to 255.
    background = np.median(border)
    span = grey.max() - background
    if span <= 0:
        raise ImageError("one flat colour, no item to classify.")
    levelled = np.clip((grey - background) * 255 / span, 0, 255)

    # Crop to the item and centre it on a square black canvas.
    item = levelled > ITEM_THRESHOLD
    rows, cols = np.flatnonzero(item.any(axis=1)), np.flatnonzero(item.any(axis=0))
    crop = levelled[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    side = max(crop.shape)
    side += 2 * round(MARGIN * side / max(height, width))
    canvas = np.zeros((side, side))
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    canvas[top : top + crop.shape[0], left : left + crop.shape[1]] = crop

    # Shrink to the model's size, in the model's polarity.
    square = Image.fromarray(np.round(canvas).astype(np.uint8))
    small = np.asarray(square.resize((width, height), Image.Resampling.LANCZOS))
    return small if preprocessing["foreground"] == "light" else 255 - small


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """Read a ``.npy`` array of images as uint8 (h, w) or (n, h, w).

    Accepted: shape (h, w), (n, h, w) or (n, h, w, 1); integers in [0, 255],
    or floats in [0, 1] (scaled by 255) or in [0, 255].

    Raises
    ------
    ImageError
        When the file is damaged, holds Python objects, or its values or
        shape are not those of images.
    """
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error):
            reason = "holds Python objects, which are never loaded"
        else:
            reason = f"damaged or truncated ({error})"
        raise ImageError(f"{path}: not a readable .npy array: {reason}.") from None
    except (OSError, EOFError) as error:
        raise ImageError(f"{path}: not a readable .npy array ({error}).") from None

    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise ImageError(
            f"{path}: array of shape {array.shape}; expected (h, w) or (n, h, w)."
        )
    if array.dtype == np.uint8:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype.kind == "f"):
        raise ImageError(f"{path}: array of {array.dtype}, not of numbers.")
    if array.size == 0:
        return array.astype(np.uint8)
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise ImageError(
            f"{path}: values outside [0, 255] (from {array.min()} to {array.max()})."
        )
    if array.dtype.kind == "f" and array.max() <= 1:
        array = array * 255
    return np.round(array).astype(np.uint8)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file of uint8 images (gzip-compressed or not) as (n, h, w).

    Raises
    ------
    ImageError
        When the file is truncated, not IDX, holds labels rather than images,
        or its size disagrees with its header.
    """
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
        if raw.startswith(_GZIP):
            raw = gzip.decompress(raw)
    except EOFError:
        raise ImageError(f"{path}: truncated gzip file.") from None
    except (OSError, zlib.error) as error:
        raise ImageError(f"{path}: not a readable gzip file ({error}).") from None

    if len(raw) < 4 or not raw.startswith(_IDX_UBYTE):
        raise ImageError(f"{path}: not an IDX file of unsigned bytes (bad magic).")
    ndim = raw[3]
    if ndim != 3:
        kind = "labels" if ndim == 1 else f"{ndim}-D data"
        raise ImageError(f"{path}: holds {kind} ({ndim}-D IDX), not images (3-D IDX).")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ImageError(f"{path}: truncated IDX header.")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ImageError(
            f"{path}: header says {shape[0]} images of {shape[1]}x{shape[2]} "
            f"({expected} bytes) but the file has {len(raw)} bytes; truncated "
            "or damaged."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def to_png(image: np.ndarray, path: str | os.PathLike, zoom: int = 8) -> None:
    """Write a uint8 grey image as PNG, enlarged ``zoom`` times (nearest pixel).

    Parameters
    ----------
    image : numpy.ndarray of uint8, shape (h, w)
    path : path-like
    zoom : int
        Each pixel becomes a ``zoom`` x ``zoom`` block, so the pixels the
        model saw stay visible.
    """
    picture = Image.fromarray(image)
    size = (image.shape[1] * zoom, image.shape[0] * zoom)
    picture.resize(size, Image.Resampling.NEAREST).save(path)
