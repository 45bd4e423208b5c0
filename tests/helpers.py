"""Helpers shared by the tests: synthetic CIFAR-like data in real formats and tiny real Keras models.

Nothing here needs the network or ../shared: every file is made by the tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from cifar10_fgs.data import CLASS_NAMES


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


def softmax_model(seed: int = 0, hidden: int = 8, end: str = "dense"):
    """A small real Keras classifier in keras.io's convention: pixels in [0, 1] (x / 255) in, softmax out.

    ``end``: how the softmax is applied, "dense" (``Dense(10, activation="softmax")``), "layer" (``Dense(10)``
    then ``Softmax()``) or "hidden" (the softmax, then a layer that hides it: a ``Reshape``).
    """
    import keras

    keras.utils.set_random_seed(seed)
    layers = [
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(hidden, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ]
    if end == "dense":
        layers.append(keras.layers.Dense(10, activation="softmax", name="probabilities"))
    else:
        layers += [keras.layers.Dense(10, name="scores"), keras.layers.Softmax(name="probabilities")]
    if end == "hidden":
        layers.append(keras.layers.Reshape((10,)))
    return keras.Sequential(layers, name=f"softmax_{end}")


def logits_twin(model):
    """``softmax_model``'s network in this project's convention ([0, 255] in, logits out), on the same weights."""
    import keras

    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    twin = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1.0 / 255.0),
            keras.layers.Conv2D(conv.filters, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ],
        name="logits_twin",
    )
    twin.set_weights(model.get_weights())
    return twin


def fed_as_keras_io(model, images: np.ndarray) -> np.ndarray:
    """``model``'s outputs on uint8 ``images`` fed as keras.io feeds them: x / 255 (float32)."""
    return np.asarray(model.predict(images.astype(np.float32) / 255.0, batch_size=256, verbose=0))


def labels_the_model_gets_right(model, images: np.ndarray, wrong: int = 0, batch_size: int = 256) -> np.ndarray:
    """Labels equal to the model's predictions, except the first ``wrong`` rows (shifted by one)."""
    from cifar10_fgs.models.inference import predict_logits

    labels = predict_logits(model, images, batch_size).argmax(axis=1).astype(np.int64)
    labels[:wrong] = (labels[:wrong] + 1) % 10
    return labels


def generate_cli(model, data, out, *more) -> list[str]:
    """The CLI's ``generate`` arguments, quiet (one place for its option names)."""
    return ["generate", "--source-model", str(model), "--cifar10", str(data), "--out", str(out), "-q", *more]


def folder_bytes(d: Path) -> dict[str, bytes]:
    """Every file of a dataset folder, the manifest without its (volatile) timing block."""
    import json

    out = {str(p.relative_to(d)): p.read_bytes() for p in sorted((d / "data").iterdir())}
    manifest = json.loads((d / "generation.json").read_text())
    manifest.pop("timing", None)
    out["generation.json"] = json.dumps(manifest, sort_keys=True).encode()
    return out


def assert_rows_join_cifar10(out: Path, cifar10: Path, step: float = 0.01) -> dict[str, np.ndarray]:
    """Every row of the folder, read by ``datasets.load_dataset``, is within ``step`` x iterations (plus half a
    level of rounding) of CIFAR-10 row ``index`` and has its label, joined with no mapping; returns each split's
    ``index`` values."""
    import tempfile

    import datasets

    from cifar10_fgs.data import load_cifar10

    dsd = datasets.load_dataset(str(out), cache_dir=tempfile.mkdtemp(prefix="join-"))
    indices = {}
    for split in dsd:
        ds, full = dsd[split], load_cifar10(cifar10, split)
        index = np.asarray(ds["index"], np.int64)
        adversarial = np.stack([np.asarray(im) for im in ds["image"]]).astype(np.int16)
        distance = np.abs(adversarial - full.images[index]).reshape(len(index), -1).max(axis=1)
        bound = step * 255 * np.asarray(ds["iterations"]) + 0.5
        assert (distance <= bound).all(), f"{split}: rows {index[distance > bound][:5]} are far from CIFAR-10[index]"
        assert np.array_equal(np.asarray(ds["label"]), full.labels[index]), f"{split}: a label differs"
        if "original_image" in ds.column_names:
            assert np.array_equal(np.stack([np.asarray(im) for im in ds["original_image"]]), full.images[index])
        indices[split] = index
    return indices


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


def make_workspace(ws: Path, model_file: Path, cifar10: Path, repo_id: str) -> Path:
    """A `run`-like workspace in ``ws``: models/<model> (+ provenance) and dataset/ (generated, carded for repo_id)."""
    import json
    import shutil

    from cifar10_fgs.config import AttackConfig
    from cifar10_fgs.generate.core import GenerateOptions, generate_dataset
    from cifar10_fgs.publish.card import write_card

    (ws / "models").mkdir()
    model = ws / "models" / model_file.name
    shutil.copy(model_file, model)
    model.with_suffix(".json").write_text(json.dumps({"arch": "tiny", "test_accuracy": None}))
    d = ws / "dataset"
    options = GenerateOptions(rows_per_shard=25)
    generate_dataset(
        d, model, replace(options, cifar10=cifar10, attack=AttackConfig(batch_size=32)), allow_failures=True
    )
    write_card(d, repo_id)
    return ws


@contextmanager
def disk_full_at_shard_write(monkeypatch, n: int = 3) -> Iterator[None]:
    """Inside the block, generate's ``n``-th shard write fails as a full disk does (ENOSPC); restored after it."""
    import cifar10_fgs.generate.writer as writer

    real, calls = writer.write_table_atomic, {"n": 0}

    def failing(table, path, tmp_dir):
        calls["n"] += 1
        if calls["n"] == n:
            raise OSError(28, "No space left on device", str(path))
        return real(table, path, tmp_dir)

    monkeypatch.setattr(writer, "write_table_atomic", failing)
    try:
        yield
    finally:
        monkeypatch.setattr(writer, "write_table_atomic", real)
