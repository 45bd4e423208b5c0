"""``load_cifar10`` from every source format, its one-line errors, and the pickle sandbox.

Every source is written here, in tmp dirs, from the same synthetic arrays in real file formats
(PNG/JPEG folders, tar.gz, protocol-2 pickles with bytes keys, ``datasets`` save_to_disk,
parquet, Arrow streams), then read back through the public entry point.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from cifar10_fgs.data import CLASS_NAMES, Cifar10Split, load_cifar10, load_cifar10_rows
from cifar10_fgs.data.split import balanced_rows
from cifar10_fgs.errors import Cifar10Error

from helpers import synthetic_images, write_image_folder

N_TRAIN, N_TEST = 30, 20


# --------------------------------------------------------------------------- writers


def chw_rows(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> (N, 3072) rows, R plane then G then B, as in cifar-10-python."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), 3072))


def write_pickle_dir(root: Path, data: dict, *, batch_pickler=None) -> Path:
    """``root/cifar-10-batches-py/`` with data_batch_1..5 and test_batch (protocol 2, bytes keys)."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    dump = batch_pickler or (lambda batch: pickle.dumps(batch, protocol=2))
    train_images, train_labels = data["train"]
    for i, idx in enumerate(np.array_split(np.arange(len(train_labels)), 5), start=1):
        batch = {
            b"batch_label": f"training batch {i} of 5".encode(),
            b"labels": train_labels[idx].tolist(),
            b"data": chw_rows(train_images[idx]),
            b"filenames": [f"img_{j}.png".encode() for j in idx],
        }
        (d / f"data_batch_{i}").write_bytes(dump(batch))
    test_images, test_labels = data["test"]
    (d / "test_batch").write_bytes(
        dump(
            {
                b"batch_label": b"testing batch 1 of 1",
                b"labels": test_labels.tolist(),
                b"data": chw_rows(test_images),
                b"filenames": [f"t_{j}.png".encode() for j in range(len(test_labels))],
            }
        )
    )
    (d / "batches.meta").write_bytes(
        pickle.dumps(
            {b"label_names": [n.encode() for n in CLASS_NAMES], b"num_cases_per_batch": 10000, b"num_vis": 3072},
            protocol=2,
        )
    )
    return d


def py2_pickle(batch: dict) -> bytes:
    """A batch pickled the way Python 2 + old numpy wrote the real file: str opcodes, numpy.core names."""

    def s(b: bytes) -> bytes:  # a Python 2 str
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    def i(v: int) -> bytes:
        return b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v)

    def array(a: np.ndarray) -> bytes:
        dtype = (
            b"cnumpy\ndtype\n"
            + s(b"u1")
            + i(0)
            + i(1)
            + b"\x87R"
            + b"("
            + i(3)
            + s(b"|")
            + b"NNN"
            + i(-1)
            + i(-1)
            + i(0)
            + b"tb"
        )
        shape = b"(" + b"".join(i(n) if n < 256 else b"J" + struct.pack("<i", n) for n in a.shape) + b"t"
        return (
            b"cnumpy.core.multiarray\n_reconstruct\n"
            + b"cnumpy\nndarray\n"
            + i(0)
            + b"\x85"
            + s(b"b")
            + b"\x87R"
            + b"("
            + i(1)
            + shape
            + dtype
            + b"\x89"
            + s(a.tobytes())
            + b"tb"
        )

    out = (
        b"\x80\x02}("
        + s(b"data")
        + array(batch[b"data"])
        + s(b"labels")
        + b"]("
        + b"".join(i(v) for v in batch[b"labels"])
        + b"e"
    )
    out += s(b"batch_label") + s(batch[b"batch_label"]) + b"u."
    return out


def tar_gz(folder: Path, out: Path, arcname: str | None = None) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=arcname or folder.name)
    return out


def hf_dataset(images: np.ndarray, labels: np.ndarray, names=CLASS_NAMES, image_col: str = "img"):
    import datasets
    from PIL import Image

    feats = datasets.Features({image_col: datasets.Image(), "label": datasets.ClassLabel(names=list(names))})
    return datasets.Dataset.from_dict(
        {image_col: [Image.fromarray(a) for a in images], "label": labels.tolist()}, features=feats
    )


def write_arrow_stream(ds, path: Path) -> Path:
    import pyarrow as pa

    path.parent.mkdir(parents=True, exist_ok=True)
    table = ds.with_format("arrow")[:]
    table = table.replace_schema_metadata(ds.features.arrow_schema.metadata)
    with pa.OSFile(str(path), "wb") as f, pa.ipc.new_stream(f, table.schema) as writer:
        writer.write_table(table)
    return path


def png_bytes(arr: np.ndarray, mode: str | None = None) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- sources


@pytest.fixture(scope="module")
def arrays():
    return {"train": synthetic_images(N_TRAIN, seed=11), "test": synthetic_images(N_TEST, seed=12)}


def _class_sorted(images, labels):
    order = np.argsort(labels, kind="stable")  # image folders read class by class, files in name order
    return images[order], labels[order]


def _build(kind: str, root: Path, arrays) -> tuple[Path, str]:
    """Write ``arrays`` as source ``kind`` under ``root``; return (source path, expected order)."""
    root.mkdir(parents=True)
    if kind in ("png_folder", "jpg_folder", "png_folder_tar"):
        ext = "jpg" if kind == "jpg_folder" else "png"
        folder = root / "cifar10"
        for split, (x, y) in arrays.items():
            write_image_folder(folder, split, x, y, ext=ext)
        if kind == "png_folder_tar":
            return tar_gz(folder, root / "cifar10-png.tar.gz"), "by_class"
        return folder, "by_class"
    if kind.startswith("pickle"):
        pickler = py2_pickle if kind == "pickle_dir_py2" else None
        d = write_pickle_dir(root, arrays, batch_pickler=pickler)
        if kind == "pickle_tar":
            return tar_gz(d, root / "cifar-10-python.tar.gz"), "source"
        if kind == "pickle_tar_in_folder":  # keras' cache: ~/.keras/datasets/cifar-10-python.tar.gz
            (root / "cache").mkdir()
            tar_gz(d, root / "cache" / "cifar-10-python.tar.gz")
            return root / "cache", "source"
        return (root if kind == "pickle_parent" else d), "source"
    import datasets

    dss = {split: hf_dataset(x, y) for split, (x, y) in arrays.items()}
    if kind == "save_to_disk":
        datasets.DatasetDict(dss).save_to_disk(str(root / "saved"))
        return root / "saved", "source"
    if kind in ("parquet", "parquet_data", "parquet_hf_layout"):
        sub = {
            "parquet": root / "pq",
            "parquet_data": root / "pq" / "data",
            "parquet_hf_layout": root / "pq" / "plain_text",
        }[kind]
        for split, ds in dss.items():
            ds.to_parquet(str(sub / f"{split}-00000-of-00001.parquet"))
        return root / "pq", "source"
    if kind == "parquet_plain":  # written by pyarrow alone: no datasets metadata, image as a struct
        import pyarrow as pa
        import pyarrow.parquet as pq

        for split, (x, y) in arrays.items():
            table = pa.table({"img": [{"bytes": png_bytes(a), "path": None} for a in x], "label": pa.array(y)})
            pq.write_table(table, str(root / f"{split}-00000-of-00001.parquet"))
        return root, "source"
    if kind in ("arrow", "arrow_data"):
        base = root / "data" if kind == "arrow_data" else root
        for split, ds in dss.items():
            half = len(ds) // 2  # two shards per split: their order must be kept
            write_arrow_stream(ds.select(range(half)), base / f"{split}-00000-of-00002.arrow")
            write_arrow_stream(ds.select(range(half, len(ds))), base / f"{split}-00001-of-00002.arrow")
        return root, "source"
    raise AssertionError(kind)


LOSSLESS = [
    "png_folder",
    "png_folder_tar",
    "pickle_dir",
    "pickle_parent",
    "pickle_tar",
    "pickle_tar_in_folder",
    "pickle_dir_py2",
    "save_to_disk",
    "parquet",
    "parquet_data",
    "parquet_hf_layout",
    "parquet_plain",
    "arrow",
    "arrow_data",
]


@pytest.mark.parametrize("kind", LOSSLESS)
def test_every_lossless_format_round_trips_pixels_labels_and_order(kind, tmp_path, arrays):
    source, order = _build(kind, tmp_path / kind, arrays)
    for split, (x, y) in arrays.items():
        if order == "by_class":
            x, y = _class_sorted(x, y)
        loaded = load_cifar10(source, split)
        assert isinstance(loaded, Cifar10Split) and loaded.split == split
        assert loaded.images.dtype == np.uint8 and loaded.images.shape == (len(y), 32, 32, 3)
        assert loaded.labels.dtype == np.int64 and loaded.labels.shape == (len(y),)
        np.testing.assert_array_equal(loaded.labels, y)
        np.testing.assert_array_equal(loaded.images, x)
        images, labels = loaded  # unpacks like a tuple
        assert images is loaded.images and labels is loaded.labels


@pytest.mark.parametrize("kind", LOSSLESS)
def test_every_lossless_format_gives_a_subset_equal_to_its_whole_split_taken(kind, tmp_path, arrays, monkeypatch):
    """``load_cifar10_rows`` (``--limit``) reads a cache-less source by rows where it can, whole where not."""
    monkeypatch.setenv("CIFAR10_FGS_CACHE", "off")
    source, _ = _build(kind, tmp_path / kind, arrays)
    for split in arrays:
        sub, rows, total = load_cifar10_rows(source, split, lambda labels: balanced_rows(labels, 10, seed=5))
        whole = load_cifar10(source, split)
        assert total == len(whole) and np.array_equal(rows, balanced_rows(whole.labels, 10, seed=5))
        np.testing.assert_array_equal(sub.images, whole.images[rows])
        np.testing.assert_array_equal(sub.labels, whole.labels[rows])
        assert sub.split == split and sub.origin == str(source)


def test_jpeg_folder_keeps_labels_and_approximate_pixels(tmp_path, arrays):
    source, _ = _build("jpg_folder", tmp_path / "jpg", arrays)
    for split, (x, y) in arrays.items():
        x, y = _class_sorted(x, y)
        loaded = load_cifar10(source, split)
        np.testing.assert_array_equal(loaded.labels, y)
        err = np.abs(loaded.images.astype(int) - x.astype(int))
        assert 0 < err.mean() < 12  # lossy, but the same pictures in the same order
        per_image = err.reshape(len(y), -1).mean(axis=1)
        others = np.abs(loaded.images[1:].astype(int) - x[:-1].astype(int)).reshape(len(y) - 1, -1).mean(axis=1)
        assert per_image.max() < others.min()


def test_image_folder_order_is_class_then_natural_file_name(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    names = {"img10.png": 10, "img2.png": 2, "img1.png": 1}
    for split in ("train", "test"):
        for cls in ("truck", "airplane"):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for name, value in names.items():
                img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                img[0, 0] = (value, CLASS_NAMES.index(cls), 0)
                Image.fromarray(img).save(d / name)
            (d / "._img3.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble junk")  # macOS metadata: skipped
            (d / "notes.txt").write_text("not an image")
    loaded = load_cifar10(tmp_path, "train")
    assert loaded.labels.tolist() == [0, 0, 0, 9, 9, 9]
    assert loaded.images[:, 0, 0, 0].tolist() == [1, 2, 10, 1, 2, 10]
    assert loaded.images[:, 0, 0, 1].tolist() == loaded.labels.tolist()


def test_numeric_class_folders_and_palette_pngs_are_accepted(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    expected = []
    for label in (3, 7):
        d = tmp_path / "test" / str(label)
        d.mkdir(parents=True)
        idx = rng.integers(0, 256, (32, 32), dtype=np.uint8)
        img = Image.fromarray(idx, mode="P")
        img.putpalette(palette.tobytes())
        img.save(d / "0.png")
        expected.append(palette[idx])
    loaded = load_cifar10(tmp_path, "test")
    assert loaded.labels.tolist() == [3, 7]
    np.testing.assert_array_equal(loaded.images, np.stack(expected))


def test_class_label_names_in_another_order_map_to_cifar10_indices(tmp_path, arrays):
    import datasets

    x, y = arrays["test"]
    reversed_names = list(CLASS_NAMES)[::-1]
    ds = hf_dataset(x, 9 - y, names=reversed_names, image_col="image")  # same classes, other indices
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "rev"))
    loaded = load_cifar10(tmp_path / "rev", "test")
    np.testing.assert_array_equal(loaded.labels, y)
    np.testing.assert_array_equal(loaded.images, x)


def test_fingerprint_depends_on_pixels_and_labels_only(tmp_path, arrays):
    a = load_cifar10(_build("pickle_dir", tmp_path / "a", arrays)[0], "test")
    b = load_cifar10(_build("parquet", tmp_path / "b", arrays)[0], "test")
    assert a.origin != b.origin and a.fingerprint() == b.fingerprint()
    x, y = arrays["test"]
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 10
    x2 = x.copy()
    x2[3, 4, 5, 1] ^= 1
    assert Cifar10Split(x, y2, "s", "test").fingerprint() != a.fingerprint()
    assert Cifar10Split(x2, y, "s", "test").fingerprint() != a.fingerprint()


def test_balanced_is_a_seeded_class_balanced_subset_in_source_order():
    n = 100
    images = np.zeros((n, 32, 32, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(n)  # row id in the pixels
    labels = np.repeat(np.arange(10), 10)  # sorted by class, like an image folder
    split = Cifar10Split(images, labels, "s", "train")
    a, b, c = split.balanced(20, seed=3), split.balanced(20, seed=3), split.balanced(20, seed=4)
    rows = a.images[:, 0, 0, 0].astype(int)
    assert len(a) == 20 and len(set(rows)) == 20 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(a.labels, labels[rows])
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert np.bincount(a.labels).tolist() == [2] * 10 and len(set(split.head(20).labels.tolist())) == 2
    assert split.balanced(None) is split and split.balanced(n + 5) is split


# --------------------------------------------------------------------------- bad sources


def _folder_with_one_image(root: Path, image: np.ndarray, mode: str | None = None) -> Path:
    from PIL import Image

    for split in ("train", "test"):
        d = root / split / "cat"
        d.mkdir(parents=True)
        Image.fromarray(image, mode=mode).save(d / "0.png")
    return root


def _pickles_with(root: Path, arrays, override: dict | None = None) -> Path:
    data = {k: (x.copy(), y.copy()) for k, (x, y) in arrays.items()}
    write_pickle_dir(root, data)
    d = root / "cifar-10-batches-py"
    batch = pickle.loads((d / "data_batch_2").read_bytes(), encoding="bytes")
    batch.update(override or {})
    (d / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=2))
    return d


def _truncated_tar(root: Path, arrays) -> Path:
    archive = tar_gz(write_pickle_dir(root, arrays), root / "cifar-10-python.tar.gz")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    return archive


def _parquet_with_label(root: Path, arrays, bad_label: int) -> Path:
    import datasets

    x, y = arrays["train"]
    y = y.copy()
    y[4] = bad_label
    ds = datasets.Dataset.from_dict({"img": [png_bytes(a) for a in x], "label": y.tolist()})
    ds = ds.cast_column("img", datasets.Image())
    ds.to_parquet(str(root / "train-00000-of-00001.parquet"))
    return root


def _corrupt_png(root: Path) -> Path:
    _folder_with_one_image(root, np.full((32, 32, 3), 7, np.uint8))
    f = root / "train" / "cat" / "0.png"
    f.write_bytes(f.read_bytes()[:60])
    return root


def _readme_folder(root: Path) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "README.txt").write_text("no images here")
    return root


def _empty_split(root: Path, arrays) -> Path:
    write_image_folder(root, "train", *arrays["train"])
    (root / "test" / "cat").mkdir(parents=True)
    return root


def _wrong_single_file(root: Path, arrays) -> Path:
    ds = hf_dataset(*arrays["test"])
    ds.to_parquet(str(root / "test-00000-of-00001.parquet"))
    return root / "test-00000-of-00001.parquet"


BAD_SOURCES = {
    # name: (builder(root, arrays) -> source, split, words the one-line message must contain)
    "missing path": (
        lambda root, a: root / "nope",
        "train",
        ["CIFAR-10 input", "does not exist", "pass --cifar10 an existing path"],
    ),
    "unknown file kind": (
        lambda root, a: (root / "cifar.txt").write_text("x") and root / "cifar.txt",
        "train",
        ["is not a CIFAR-10 input", "pass --cifar10 a .tar.gz"],
    ),
    "wrong image size": (
        lambda root, a: _folder_with_one_image(root, np.zeros((28, 28, 3), np.uint8)),
        "train",
        ["is 28x28", "expected 32x32"],
    ),
    "grayscale": (
        lambda root, a: _folder_with_one_image(root, np.zeros((32, 32), np.uint8)),
        "train",
        ["mode L", "expected 3-channel RGB"],
    ),
    "rgba": (
        lambda root, a: _folder_with_one_image(root, np.zeros((32, 32, 4), np.uint8)),
        "train",
        ["mode RGBA", "expected 3-channel RGB"],
    ),
    "truncated png": (lambda root, a: _corrupt_png(root), "train", ["is not a readable image", "expected PNG or JPEG"]),
    "pickle label 10": (
        lambda root, a: _pickles_with(root, a, {b"labels": [10] * 6}),
        "train",
        ["label 10", "outside 0-9"],
    ),
    "parquet label -1": (lambda root, a: _parquet_with_label(root, a, -1), "train", ["label -1", "outside 0-9"]),
    "pickle rows of 1024": (
        lambda root, a: _pickles_with(root, a, {b"data": np.zeros((6, 1024), np.uint8)}),
        "train",
        ["(6, 1024)", "expected (N, 3072)"],
    ),
    "pickle batch missing": (
        lambda root, a: (_pickles_with(root, a) / "data_batch_4").unlink() or root,
        "train",
        ["data_batch_4 is missing", "complete cifar-10-batches-py"],
    ),
    "empty split": (_empty_split, "test", ["is empty", "expected CIFAR-10 images"]),
    "truncated tar.gz": (_truncated_tar, "train", ["not a readable tar archive", "download it again"]),
    "tar.gz without cifar": (
        lambda root, a: tar_gz(_readme_folder(root / "x"), root / "x.tar.gz"),
        "train",
        ["holds no train images", "expected cifar-10-batches-py/"],
    ),
    "folder without cifar": (
        lambda root, a: (root / "notes.txt").write_text("hi") and root,
        "train",
        ["holds no CIFAR-10 data", "expected cifar-10-batches-py"],
    ),
    "test file as train": (_wrong_single_file, "train", ["one file", "'train'", "folder holding train-*"]),
    "not a class folder": (
        lambda root, a: write_image_folder(root, "train", *a["train"]) and (root / "train" / "cats").mkdir() or root,
        "train",
        ["'cats'", "not a CIFAR-10 class"],
    ),
    "unknown split": (
        lambda root, a: write_image_folder(root, "train", *a["train"]),
        "validation",
        ["unknown split 'validation'", "expected one of train, test"],
    ),
    "hub without a name": (lambda root, a: "hub:", "train", ["names no dataset", "hub:uoft-cs/cifar10"]),
}


@pytest.mark.parametrize("name", list(BAD_SOURCES))
def test_bad_sources_raise_one_line_cifar10_errors(name, tmp_path, arrays):
    build, split, words = BAD_SOURCES[name]
    root = tmp_path / "src"
    root.mkdir()
    source = build(root, arrays)
    with pytest.raises(Cifar10Error) as err:
        load_cifar10(source, split)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400
    for w in words:
        assert w in message, (w, message)
    assert ": expected" in message or ": pass" in message or ": download" in message  # says what is expected


CLI_BAD = [n for n in BAD_SOURCES if n != "unknown split"]  # `train` reads train and test itself


@pytest.mark.parametrize("name", CLI_BAD)
def test_cli_reports_bad_sources_in_one_line_with_exit_code_2(name, tmp_path, arrays, capsys):
    from cifar10_fgs.cli._errors import run_with_friendly_errors
    from cifar10_fgs.cli.main import cli

    build, _, words = BAD_SOURCES[name]
    root = tmp_path / "src"
    root.mkdir()
    source = build(root, arrays)
    out = tmp_path / "x.keras"
    capsys.readouterr()  # drop what writing the source printed
    code = run_with_friendly_errors(
        cli, ["train", "--arch", "target", "--cifar10", str(source), "--out", str(out), "-q"]
    )
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and lines[0].startswith("Error: "), captured.err
    assert "Traceback" not in captured.err and words[0] in lines[0]
    assert not out.exists() and not Path(f"{out}.ckpt").exists()


def test_hub_source_offline_fails_fast_with_one_line_and_exit_2(tmp_path):
    """The real CLI in a fresh process with an empty HF cache and HF_HUB_OFFLINE=1: no hang, no traceback."""
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "CIFAR10_FGS_DEBUG": "0",
    }
    t0 = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cifar10_fgs.cli.main",
            "train",
            "--arch",
            "target",
            "--cifar10",
            "hub:uoft-cs/cifar10",
            "--out",
            str(tmp_path / "m.keras"),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.time() - t0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert lines and lines[-1].startswith("Error: cannot load 'uoft-cs/cifar10' from the Hugging Face hub"), proc.stderr
    assert "HF_HUB_OFFLINE" in lines[-1] and "--cifar10 PATH" in lines[-1]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert not (tmp_path / "m.keras").exists()
    assert elapsed < 90  # start-up included; the hub attempt itself must not wait on the network


# --------------------------------------------------------------------------- pickle sandbox


class _Evil:
    """Unpickling this runs ``command`` in a shell (with the standard, unrestricted unpickler)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _EvilEval:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"__import__('pathlib').Path({str(self.marker)!r}).touch()",))


class _Rot13:
    def __init__(self, text: str):
        self.text = text

    def __reduce__(self):
        import codecs

        return (codecs.encode, (self.text, "rot13"))


def _sneaky_pickles(marker: Path) -> dict[str, bytes]:
    return {
        "os.system batch": pickle.dumps(_Evil(f"touch {marker}"), protocol=2),
        "os.system inside the dict": pickle.dumps({b"data": _Evil(f"touch {marker}"), b"labels": [0]}, protocol=2),
        "eval": pickle.dumps({b"labels": _EvilEval(marker), b"data": np.zeros((1, 3072), np.uint8)}, protocol=2),
        "eval protocol 5": pickle.dumps(_EvilEval(marker), protocol=5),
    }


@pytest.mark.parametrize("payload", ["os.system batch", "os.system inside the dict", "eval", "eval protocol 5"])
@pytest.mark.parametrize("container", ["folder", "tar.gz"])
def test_malicious_pickles_are_refused_without_running_code(payload, container, tmp_path, arrays):
    marker = tmp_path / "pwned"
    blob = _sneaky_pickles(marker)[payload]
    d = write_pickle_dir(tmp_path / "src", arrays)
    (d / "data_batch_3").write_bytes(blob)
    source = d if container == "folder" else tar_gz(d, tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(Cifar10Error) as err:
        load_cifar10(source, "train")
    message = str(err.value)
    assert "data_batch_3" in message and "forbidden" in message and "\n" not in message
    assert not marker.exists()
    # the payload is live: the standard unpickler does run it (so the check above means something)
    try:
        pickle.loads(blob)
    except Exception:  # noqa: BLE001 - the code ran before any error
        pass
    assert marker.exists()


def test_sandbox_also_refuses_object_arrays_and_codec_tricks(tmp_path, arrays):
    from cifar10_fgs.data import restricted_loads

    obj = pickle.dumps({b"data": np.array([b"x", 1], dtype=object), b"labels": [0]}, protocol=2)
    codec = pickle.dumps(_Rot13("hi"), protocol=2)
    assert b"_codecs" in codec and pickle.loads(codec) == "uv"  # a real (harmless) non-latin-1 codec call
    for blob in (obj, codec):
        with pytest.raises(Cifar10Error, match="forbidden"):
            restricted_loads(blob, "batch")
    # and still reads what numpy writes at every protocol
    x, y = arrays["test"]
    for protocol in range(6):
        batch = restricted_loads(pickle.dumps({b"data": chw_rows(x), b"labels": y.tolist()}, protocol=protocol), "b")
        np.testing.assert_array_equal(batch[b"data"], chw_rows(x))
