"""Shared fixtures: synthetic CIFAR-like data in real formats and tiny real Keras models.

Nothing here needs the network or ../shared: every file is made by the tests.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
if "HF_DATASETS_CACHE" not in os.environ:  # keep the user's cache clean: tests write their own
    import tempfile

    os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="cifar10-fgs-tests-hf-")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cifar10_fgs.data import CLASS_NAMES, load_cifar10  # noqa: E402


def synthetic_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 32x32x3 images whose mean colour depends on the label, and labels 0..9."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    base = (labels[:, None, None, None] * 23 + 20).astype(np.int16)
    noise = rng.integers(-20, 21, size=(n, 32, 32, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8), labels.astype(np.int64)


def tiny_model(seed: int = 0, hidden: int = 8):
    """A small real Keras classifier: uint8-range pixels in, 10 logits out."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1.0 / 255.0),
            keras.layers.Conv2D(hidden, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ],
        name="tiny",
    )


def labels_the_model_gets_right(model, images: np.ndarray, wrong: int = 0, batch_size: int = 256) -> np.ndarray:
    """Labels equal to the model's predictions, except the first ``wrong`` rows (shifted by one)."""
    from cifar10_fgs.inference import predict_logits

    labels = predict_logits(model, images, batch_size).argmax(axis=1).astype(np.int64)
    labels[:wrong] = (labels[:wrong] + 1) % 10
    return labels


def write_image_folder(root: Path, split: str, images: np.ndarray, labels: np.ndarray, ext: str = "png") -> Path:
    from PIL import Image

    counters = {}
    for img, lab in zip(images, labels):
        d = root / split / CLASS_NAMES[lab]
        d.mkdir(parents=True, exist_ok=True)
        i = counters.get(lab, 0)
        counters[lab] = i + 1
        Image.fromarray(img).save(d / f"{i:04d}.{ext}")
    return root


@pytest.fixture(scope="session")
def tiny_keras_path(tmp_path_factory) -> Path:
    """A saved tiny model (.keras)."""
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    tiny_model().save(path)
    return path


@pytest.fixture(scope="session")
def image_folder_source(tmp_path_factory, tiny_keras_path):
    """An image folder source whose labels the tiny model gets right but for 5 per split.

    Returns ``(root, {split: (images, labels)})`` with arrays in the order ``load_cifar10`` reads them.
    """
    import keras

    model = keras.saving.load_model(tiny_keras_path, compile=False)
    root = tmp_path_factory.mktemp("imgsrc")
    data = {}
    for split, n, seed in (("train", 60, 1), ("test", 40, 2)):
        images, _ = synthetic_images(n, seed)
        labels = labels_the_model_gets_right(model, images, wrong=5)
        write_image_folder(root, split, images, labels)
        loaded = load_cifar10(root, split)
        data[split] = (loaded.images, loaded.labels)
    return root, data
