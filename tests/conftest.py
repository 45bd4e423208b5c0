"""Shared fixtures over the helpers in helpers.py: datasets on disk and saved tiny Keras models.

Nothing here needs the network or ../shared: every file is made by the tests.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
if "HF_DATASETS_CACHE" not in os.environ:  # keep the user's cache clean: tests write their own
    os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="cifar10-fgs-tests-hf-")
# decoded CIFAR-10 (data/cache.py): never the user's ~/.cache; session fixtures share this one,
# each test gets its own (the autouse fixture below)
os.environ["CIFAR10_FGS_CACHE"] = tempfile.mkdtemp(prefix="cifar10-fgs-tests-decoded-")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from cifar10_fgs.data import load_cifar10  # noqa: E402

from helpers import labels_the_model_gets_right, synthetic_images, tiny_model, write_image_folder  # noqa: E402


@pytest.fixture(autouse=True)
def _own_decode_cache(tmp_path_factory, monkeypatch):
    """Each test decodes into a cache of its own: no test sees another's entries."""
    monkeypatch.setenv("CIFAR10_FGS_CACHE", str(tmp_path_factory.mktemp("decoded")))


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
