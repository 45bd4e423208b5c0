"""``load_cifar10_rows``: a subset (``--limit``, ``--train-limit``) decodes only its rows where the source allows it."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
from PIL import Image

from cifar10_fgs.data import load_cifar10, load_cifar10_rows
from cifar10_fgs.data.cache import cache_dir
from cifar10_fgs.data.split import balanced_rows

from helpers import synthetic_images, write_image_folder


@pytest.fixture
def sources(tmp_path):
    images, labels = synthetic_images(60, seed=8)
    root = write_image_folder(tmp_path / "src", "train", images, labels)
    tar = tmp_path / "src.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(root / "train", arcname="train")
    return {"folder": root, "tarball": tar}


def choose(labels):
    return balanced_rows(labels, 20, seed=3)


@pytest.mark.parametrize("kind", ["folder", "tarball"])
def test_a_subset_of_an_image_source_decodes_only_its_rows_and_equals_the_whole_split_taken(sources, kind, decodes):
    sub, rows, total = load_cifar10_rows(sources[kind], "train", choose)
    assert decodes["n"] == 20 and total == 60
    assert not cache_dir().exists() or not list(cache_dir().iterdir())  # the cache keeps whole splits only
    whole = load_cifar10(sources[kind], "train")  # decodes all 60 (and caches them)
    assert np.array_equal(rows, choose(whole.labels))
    assert np.array_equal(sub.images, whole.images[rows]) and np.array_equal(sub.labels, whole.labels[rows])
    assert sub.fingerprint() == whole.take(rows).fingerprint()  # what generate records for the subset
    assert np.bincount(sub.labels, minlength=10).tolist() == [2] * 10


def test_a_cached_split_is_read_not_decoded(sources, decodes):
    whole = load_cifar10(sources["folder"], "train")
    decodes["n"] = 0
    sub, rows, _ = load_cifar10_rows(sources["folder"], "train", choose)
    assert decodes["n"] == 0
    assert np.array_equal(sub.images, whole.images[rows])


def test_a_source_that_cannot_be_read_by_row_is_loaded_whole(tmp_path):
    import datasets  # a save_to_disk folder: loaded whole, then its rows taken

    images, labels = synthetic_images(30, seed=2)
    features = datasets.Features({"img": datasets.Image(), "label": datasets.Value("int64")})
    ds = datasets.Dataset.from_dict({"img": [Image.fromarray(i) for i in images], "label": labels.tolist()}, features)
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "saved"))
    sub, rows, total = load_cifar10_rows(tmp_path / "saved", "train", lambda lab: balanced_rows(lab, 10, 0))
    whole = load_cifar10(tmp_path / "saved", "train")
    assert total == 30 and np.array_equal(sub.images, whole.images[rows])


def test_an_error_of_choose_reaches_the_caller_before_any_decode(sources, decodes):
    def refuse(labels):
        raise ValueError(f"only {len(labels)} rows")

    with pytest.raises(ValueError, match="only 60 rows"):
        load_cifar10_rows(sources["tarball"], "train", refuse)
    assert decodes["n"] == 0


def test_an_empty_image_folder_is_the_same_one_line_error_as_a_whole_load(tmp_path):
    from cifar10_fgs.errors import Cifar10Error

    (tmp_path / "src" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(Cifar10Error) as whole:
        load_cifar10(tmp_path / "src", "train")
    with pytest.raises(Cifar10Error) as rows:
        load_cifar10_rows(tmp_path / "src", "train", choose)
    assert str(rows.value) == str(whole.value) and "is empty" in str(rows.value)
