"""``--limit``: a seeded class-balanced subset recorded in the manifest; the source check before attacking."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from cifar10_fgs.attack.fgs import AttackConfig
from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.data import Cifar10Split, load_cifar10
from cifar10_fgs.data.split import balanced_rows
from cifar10_fgs.dataset.manifest import FILE as MANIFEST
from cifar10_fgs.dataset.manifest import Cifar10MismatchError, Manifest
from cifar10_fgs.dataset.shards import decode_images, read_shard
from cifar10_fgs.errors import ConfigError
from cifar10_fgs.generate.check import check_source_model
from cifar10_fgs.generate.core import GenerateOptions, generate_dataset
from cifar10_fgs.generate.originals import OriginalLogits
from cifar10_fgs.publish.card import write_card
from cifar10_fgs.validate import validate_dataset

from helpers import generate_cli, labels_the_model_gets_right, synthetic_images, write_image_folder

CFG = AttackConfig(batch_size=32)


def stored(out):
    tables = [read_shard(p) for p in sorted((out / "data").iterdir())]
    return {c: np.concatenate([t.column(c).to_numpy(zero_copy_only=False) for t in tables]) for c in ("index", "label")}


@pytest.fixture(scope="module")
def sorted_folder(tmp_path_factory):
    """An image folder of 100 test images, 10 per class: read back sorted by class, like CIFAR-10's JPEGs."""
    root = tmp_path_factory.mktemp("sorted")
    images, labels = synthetic_images(100, seed=4)
    write_image_folder(root, "test", images, labels)
    return root


@pytest.fixture(scope="module")
def constant_model_path(tmp_path_factory):
    """A real Keras model that calls every image class 3 ('cat'): zero kernel, so no input gradient either."""
    import keras

    bias = np.zeros(10, np.float32)
    bias[3] = 5.0
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1.0 / 255.0),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(bias)),
        ],
        name="constant",
    )
    path = tmp_path_factory.mktemp("constant") / "constant.keras"
    model.save(path)
    return path


# --------------------------------------------------------------------------- the subset rule


def test_balanced_rows_deals_the_classes_in_turn_and_fills_a_short_class_from_the_others():
    labels = np.repeat(np.arange(10), [30, 30, 30, 2, 30, 30, 30, 30, 30, 30])  # class 3 has only 2 rows
    rows = balanced_rows(labels, 100, seed=7)
    assert np.all(np.diff(rows) > 0)  # ascending: source order
    # 100 / 10 = 10 each; class 3 gives its 2, its 8 go one each to classes 0, 1, 2, 4, 5, 6, 7, 8 (class order)
    assert np.bincount(labels[rows], minlength=10).tolist() == [11, 11, 11, 2, 11, 11, 11, 11, 11, 10]
    # a remainder goes to the lowest classes first
    assert np.bincount(labels[balanced_rows(labels, 23, 7)], minlength=10).tolist() == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert np.array_equal(rows, balanced_rows(labels, 100, seed=7))  # deterministic
    assert not np.array_equal(rows, balanced_rows(labels, 100, seed=8))  # and seeded
    assert np.array_equal(balanced_rows(labels, len(labels), 0), np.arange(len(labels)))  # the whole split
    # a smaller limit takes a subset of a larger one's rows (the same seeded order per class)
    assert set(balanced_rows(labels, 50, 7)) <= set(rows)
    with pytest.raises(ValueError, match="limit"):
        balanced_rows(labels, len(labels) + 1)


# --------------------------------------------------------------------------- generate --limit


def test_limit_on_a_class_sorted_folder_covers_every_class_and_joins_back(sorted_folder, tiny_keras_path, tmp_path):
    out = tmp_path / "lim"
    options = GenerateOptions(splits=("test",), limit=30, rows_per_shard=16, with_originals=True, seed=2)
    generate_dataset(out, tiny_keras_path, replace(options, cifar10=sorted_folder, attack=CFG), allow_failures=True)
    full = load_cifar10(sorted_folder, "test")
    assert full.labels[:30].tolist() == [0] * 10 + [1] * 10 + [2] * 10  # what the first 30 rows would have been

    manifest = json.loads((out / MANIFEST).read_text())
    subset = manifest["config"]["splits"]["test"]["subset"]
    assert {k: subset[k] for k in ("rule", "limit", "seed", "index")} == {
        "rule": "balanced",
        "limit": 30,
        "seed": 2,
        "index": "cifar10_row",
    }
    original_rows = np.asarray(subset["original_rows"])
    assert original_rows.tolist() == balanced_rows(full.labels, 30, 2).tolist()
    assert np.bincount(full.labels[original_rows], minlength=10).tolist() == [3] * 10

    rows = stored(out)
    failures = manifest["summary"]["test"]["failures"]
    assert sorted([*rows["index"].tolist(), *failures]) == original_rows.tolist()  # CIFAR-10 rows, both
    assert len(set(full.labels[rows["index"]].tolist()) | set(full.labels[failures].tolist())) == 10
    # index is the original row: its label and (stored with --with-originals) its pixels
    assert np.array_equal(rows["label"], full.labels[rows["index"]])
    tables = [read_shard(p) for p in sorted((out / "data").iterdir())]
    originals = np.concatenate([decode_images(t.column("original_image").to_pylist()) for t in tables])
    assert np.array_equal(originals, full.images[rows["index"]])
    # a shard covers 16 consecutive rows of the subset; its index_range spans their CIFAR-10 rows
    entries = sorted(manifest["shards"].values(), key=lambda e: e["shard"])
    assert [e["index_range"] for e in entries] == [
        [int(original_rows[0]), int(original_rows[15]) + 1],
        [int(original_rows[16]), int(original_rows[29]) + 1],
    ]

    # every consumer re-derives the subset from the record: validate checks against the originals
    report = validate_dataset(out, tiny_keras_path, cifar10=sorted_folder)
    assert report.ok, report.to_json() if hasattr(report, "to_json") else report
    # and the same command again gives the same bytes
    again = tmp_path / "again"
    generate_dataset(again, tiny_keras_path, replace(options, cifar10=sorted_folder, attack=CFG), allow_failures=True)
    for p in sorted((out / "data").iterdir()):
        assert (again / "data" / p.name).read_bytes() == p.read_bytes()
    # the card says how `index` joins back for a subset
    write_card(out, cifar10=sorted_folder)
    card = (out / "README.md").read_text()
    assert "class-balanced subset of 30 test images" in card and "`index` is still the CIFAR-10 row" in card
    assert "original_rows[index]" not in card
    assert "Only the first" not in card


def test_limit_on_an_image_folder_decodes_only_the_subset(sorted_folder, tiny_keras_path, tmp_path, monkeypatch):
    from PIL import Image

    opened = []
    real = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
    options = GenerateOptions(splits=("test",), limit=20, seed=2)
    generate_dataset(
        tmp_path / "lim", tiny_keras_path, replace(options, cifar10=sorted_folder, attack=CFG), allow_failures=True
    )
    assert len(opened) == 20  # of the folder's 100 images
    subset = json.loads((tmp_path / "lim" / MANIFEST).read_text())["config"]["splits"]["test"]["subset"]
    assert subset["original_rows"] == balanced_rows(load_cifar10(sorted_folder, "test").labels, 20, 2).tolist()


def test_a_manifest_without_a_subset_still_reads_as_the_first_rows(sorted_folder, tiny_keras_path, tmp_path):
    """generation.json files from before --limit was balanced record no subset: their rows are the first num_rows."""
    out = tmp_path / "lim"
    generate_dataset(
        out,
        tiny_keras_path,
        GenerateOptions(cifar10=sorted_folder, attack=CFG, splits=("test",), limit=20),
        allow_failures=True,
    )
    full = load_cifar10(sorted_folder, "test")
    obj = json.loads((out / MANIFEST).read_text())
    manifest = Manifest.from_json(obj)
    assert manifest.check_cifar10_fingerprint("test", full).fingerprint() == full.balanced(20, 0).fingerprint()
    del obj["config"]["splits"]["test"]["subset"]
    old = Manifest.from_json(obj)
    assert old.config.splits["test"].subset is None
    assert "subset" not in old.to_json()["config"]["splits"]["test"]
    assert old.config.splits["test"].rows_of(full).fingerprint() == full.head(20).fingerprint()
    with pytest.raises(Cifar10MismatchError, match="the first 20 test images"):
        old.check_cifar10_fingerprint(
            "test", full
        )  # these rows were not the first 20: refused, not silently mis-joined
    obj["config"]["splits"]["test"]["fingerprint"] = full.head(20).fingerprint()
    assert Manifest.from_json(obj).check_cifar10_fingerprint("test", full).fingerprint() == full.head(20).fingerprint()


def test_no_limit_records_no_subset(tiny_keras_path, image_folder_source, tmp_path):
    root, _ = image_folder_source
    out = tmp_path / "all"
    generate_dataset(out, tiny_keras_path, GenerateOptions(cifar10=root, attack=CFG, splits=("test",)))
    assert "subset" not in json.loads((out / MANIFEST).read_text())["config"]["splits"]["test"]


# --------------------------------------------------------------------------- the source check


def test_a_constant_source_is_refused_in_one_line_before_any_shard(constant_model_path, tmp_path, capsys):
    images, labels = synthetic_images(200, seed=6)  # 20 per class: the constant class is 10% right
    root = write_image_folder(tmp_path / "src", "test", images, labels)
    out = tmp_path / "out"
    code = run_with_friendly_errors(cli, generate_cli(constant_model_path, root, out, "--split", "test"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "near chance" in err and "accuracy 0.100" in err and "--source-model" in err and "train it longer" in err
    assert not out.exists()  # nothing written, not even the folder


def test_a_source_calling_most_images_one_class_is_refused_even_above_chance(constant_model_path, tmp_path):
    import keras

    images, _ = synthetic_images(200, seed=6)
    others = np.resize([0, 1, 2, 4, 5, 6, 7, 8, 9], 200)
    labels = np.where(np.arange(200) % 2 == 0, 3, others)  # half the labels are 'cat', the rest spread
    model = keras.saving.load_model(constant_model_path, compile=False)
    data = Cifar10Split(images, labels.astype(np.int64), "s", "test")
    assert np.mean(labels == 3) == 0.5  # above chance, and the labels do not make 'cat' most images
    with pytest.raises(ConfigError, match=r"calls 100% of 200 test originals 'cat' \(accuracy 0\.5"):
        check_source_model(OriginalLogits(model), constant_model_path, data, GenerateOptions().source_check)


def test_a_good_source_passes_on_a_class_sorted_split_whose_first_batch_is_one_class(tiny_keras_path):
    """The check predicts a balanced sample, not the first rows (on an image folder those are one class)."""
    import keras

    model = keras.saving.load_model(tiny_keras_path, compile=False)
    images, _ = synthetic_images(300, seed=8)
    labels = labels_the_model_gets_right(model, images)
    order = np.argsort(labels, kind="stable")
    data = Cifar10Split(images[order], labels[order], "s", "test")
    check_source_model(OriginalLogits(model), tiny_keras_path, data, GenerateOptions().source_check)  # no error
    wrong = Cifar10Split(data.images, (data.labels + 1) % 10, "s", "test")  # the same model, now always wrong
    with pytest.raises(ConfigError, match="near chance"):
        check_source_model(OriginalLogits(model), tiny_keras_path, wrong, GenerateOptions().source_check)


def test_too_few_originals_are_not_judged_and_no_source_check_attacks_anyway(constant_model_path, tmp_path, capsys):
    images, labels = synthetic_images(200, seed=6)
    root = write_image_folder(tmp_path / "src", "test", images, labels)
    few = tmp_path / "few"
    args = ["--limit", "99", "--max-iterations", "2", "--allow-failures"]
    assert run_with_friendly_errors(cli, generate_cli(constant_model_path, root, few, "--split", "test", *args)) == 0
    out = tmp_path / "out"
    more = ["--no-source-check", "--max-iterations", "2", "--allow-failures"]
    assert run_with_friendly_errors(cli, generate_cli(constant_model_path, root, out, "--split", "test", *more)) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    # the constant model has no gradient: its 'cat' images are not fooled, the rest were already wrong
    assert len(manifest["summary"]["test"]["failures"]) == 20 and len(stored(out)["index"]) == 180
