"""The decode cache: a second load of the same source decodes nothing; a changed source is decoded again."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
import pytest
from PIL import Image

from cifar10_fgs.data import load_cifar10
from cifar10_fgs.data.cache import CACHE_ENV, cache_dir

from helpers import synthetic_images, write_image_folder


@pytest.fixture
def folder(tmp_path):
    images, labels = synthetic_images(30, seed=4)
    root = write_image_folder(tmp_path / "src", "test", images, labels)
    return root, load_cifar10(root, "test")


def _entries():
    return sorted(p.name for p in cache_dir().iterdir()) if cache_dir().exists() else []


def test_a_second_load_of_a_folder_decodes_nothing(folder, decodes, caplog):
    root, first = folder  # decoded (and cached) by the fixture
    assert len(_entries()) == 1 and _entries()[0].endswith(".npz")
    with caplog.at_level("INFO", logger="cifar10_fgs.data.cache"):
        again = load_cifar10(root, "test")
    assert decodes["n"] == 0
    assert "from the cache" in caplog.text
    assert np.array_equal(again.images, first.images) and np.array_equal(again.labels, first.labels)
    assert again.fingerprint() == first.fingerprint()


def test_a_changed_image_is_decoded_again(folder, decodes):
    root, first = folder
    victim = sorted((root / "test").rglob("*.png"))[0]
    pixels = np.asarray(Image.open(victim)).copy()
    decodes["n"] = 0
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(victim)
    again = load_cifar10(root, "test")
    assert decodes["n"] == len(first)  # every image decoded again, none read from the stale entry
    assert not np.array_equal(again.images, first.images)
    assert len(_entries()) == 2
    removed = sorted((root / "test").rglob("*.png"))[-1]
    removed.unlink()
    assert len(load_cifar10(root, "test")) == len(first) - 1


def test_a_tarball_is_keyed_by_content_not_by_its_name_or_time(folder, tmp_path, decodes):
    root, first = folder
    tar = tmp_path / "cifar.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(root / "test", arcname="test")
    assert np.array_equal(load_cifar10(tar, "test").images, first.images)
    assert decodes["n"] == len(first)
    os.utime(tar, (1, 1))  # touched: same content
    copy = tmp_path / "copy.tar.gz"
    copy.write_bytes(tar.read_bytes())
    decodes["n"] = 0
    assert np.array_equal(load_cifar10(tar, "test").images, first.images)
    assert np.array_equal(load_cifar10(copy, "test").images, first.images)
    assert decodes["n"] == 0
    assert len(_entries()) == 2  # the folder's entry and the tarball's


def test_the_cache_can_be_turned_off_and_moved(folder, tmp_path, monkeypatch, decodes):
    root, first = folder
    monkeypatch.setenv(CACHE_ENV, "off")
    assert cache_dir() is None
    load_cifar10(root, "test")
    assert decodes["n"] == len(first)
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "cifar10-fgs" / "decoded"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "cifar10-fgs" / "decoded"


def test_a_damaged_entry_is_decoded_again_and_replaced(folder, decodes):
    root, first = folder
    entry = cache_dir() / _entries()[0]
    entry.write_bytes(entry.read_bytes()[:100])
    again = load_cifar10(root, "test")
    assert decodes["n"] == len(first) and np.array_equal(again.images, first.images)
    decodes["n"] = 0
    load_cifar10(root, "test")
    assert decodes["n"] == 0


def test_two_processes_decoding_at_once_leave_one_valid_entry(tmp_path):
    images, labels = synthetic_images(400, seed=9)
    root = write_image_folder(tmp_path / "src", "train", images, labels)
    script = textwrap.dedent(f"""
        import sys
        from cifar10_fgs.data import load_cifar10
        sys.stdin.read(1)  # both start decoding together
        print(load_cifar10({str(root)!r}, "train").fingerprint())
    """)
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for p in procs:
        p.stdin.write("go")
        p.stdin.flush()
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1
    assert len(_entries()) == 1 and _entries()[0].endswith(".npz")  # no temporary file left behind
    assert load_cifar10(root, "train").fingerprint() == outs[0]
