"""The ``Cifar10Split`` type, CIFAR-10's constants, and the checks every input's arrays pass."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np

from cifar10_fgs.errors import Cifar10Error, one_line

CLASS_NAMES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (32, 32, 3)
SPLITS: tuple[str, ...] = ("train", "test")
SPLIT_SIZES = {"train": 50_000, "test": 10_000}
DEFAULT_CIFAR10 = "hub:uoft-cs/cifar10"
KERAS_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


@dataclass(frozen=True)
class Cifar10Split:
    """One split: ``images`` uint8 (N, 32, 32, 3), ``labels`` int64 (N,), in the input's order."""

    images: np.ndarray
    labels: np.ndarray
    origin: str  # where the split was read from (the --cifar10 text, or a description)
    split: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __iter__(self):  # allows ``images, labels = load_cifar10(...)``
        return iter((self.images, self.labels))

    def fingerprint(self) -> str:
        """sha256 over the pixels and labels: identifies the data independent of where it came from."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.images, dtype=np.uint8).tobytes())
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return h.hexdigest()

    def head(self, limit: int | None) -> Cifar10Split:
        """The first ``limit`` rows (keeps row ``i`` = input row ``i``; how ``--limit`` worked before it was
        class-balanced, so folders generated then are read with it)."""
        if limit is None or limit >= len(self):
            return self
        return self.take(np.arange(limit))

    def take(self, rows: np.ndarray) -> Cifar10Split:
        """The rows at the positions ``rows``, in that order."""
        return Cifar10Split(self.images[rows], self.labels[rows], self.origin, self.split)

    def balanced(self, limit: int | None, seed: int = 0) -> Cifar10Split:
        """The class-balanced subset of ``limit`` rows (:func:`balanced_rows`); all rows if ``limit`` is None."""
        if limit is None or limit >= len(self):
            return self
        return self.take(balanced_rows(self.labels, limit, seed))


def balanced_rows(labels: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Positions of a seeded, class-balanced subset of ``limit`` rows, ascending (so in input order).

    The rule (``--limit``, ``--train-limit``): the rows of each class are put in a seeded random order
    (one ``numpy.random.default_rng(seed)`` permutation of the whole split); then they are dealt round-robin,
    one per class in class order 0-9, the first ``limit`` dealt are taken. So every class gets
    ``limit // 10`` rows, classes 0, 1, ... one more each for the remainder, and when a class runs out its
    share goes on to the classes that still have rows, in the same order. Deterministic in (labels, limit, seed).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if not 1 <= limit <= len(labels):
        raise ValueError(f"limit must be in 1..{len(labels)}, got {limit}")
    order = np.random.default_rng(seed).permutation(len(labels))
    by_class = order[np.argsort(labels[order], kind="stable")]  # each class's rows, in the seeded order
    starts = np.searchsorted(labels[by_class], labels[by_class], side="left")
    rank = np.arange(len(labels)) - starts  # position of each row within its class's seeded order
    deal = np.lexsort((labels[by_class], rank))  # round-robin: rank first, then class
    return np.sort(by_class[deal[:limit]])


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise Cifar10Error(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return split


def check_arrays(images, labels, origin: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``images`` uint8 (N, 32, 32, 3) and ``labels`` int64 classes 0-9, one per image, or a one-line Cifar10Error."""
    images = np.asarray(images)
    labels = np.asarray(labels).reshape(-1)
    if images.shape[0] == 0 or labels.shape[0] == 0:
        raise Cifar10Error(f"split {split!r} of {origin!r} is empty: expected CIFAR-10 images in it")
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise Cifar10Error(f"images of {origin!r} have shape {images.shape[1:]}: expected {IMAGE_SHAPE} (32x32 RGB)")
    if images.shape[0] != labels.shape[0]:
        raise Cifar10Error(
            f"{origin!r} has {images.shape[0]} images but {labels.shape[0]} labels: expected one label per image"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise Cifar10Error(f"labels of {origin!r} have dtype {labels.dtype}: expected integers 0-9")
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
        raise Cifar10Error(
            f"label {int(labels[bad[0]])} at row {int(bad[0])} of {origin!r} ({split}) is outside 0-9: "
            "expected CIFAR-10 class indices"
        )
    if images.dtype != np.uint8:
        raise Cifar10Error(f"images of {origin!r} have dtype {images.dtype}: expected uint8 pixels 0-255")
    return np.ascontiguousarray(images), labels.astype(np.int64)


def decode_image(data: bytes, where: str) -> np.ndarray:
    """Decode PNG/JPEG bytes to a (32, 32, 3) uint8 array, or raise a one-line Cifar10Error."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            size = img.size  # from the header: a wrong size is refused before any pixel is decoded
            if size != (32, 32):
                raise Cifar10Error(f"{where} is {size[0]}x{size[1]}: expected 32x32 CIFAR-10 images")
            img.load()
            mode = img.mode
            if mode == "P" and "transparency" not in img.info:  # a lossless palette PNG of an RGB image
                arr, mode = np.asarray(img.convert("RGB")), "RGB"
            else:
                arr = np.asarray(img)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise Cifar10Error(f"{where} is not a readable image ({one_line(exc)}): expected PNG or JPEG bytes") from None
    if mode != "RGB":
        raise Cifar10Error(f"{where} has mode {mode}: expected 3-channel RGB images")
    return arr
