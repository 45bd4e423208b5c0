"""Under ``--limit``, ``index`` is the CIFAR-10 row: after one run, two workers and combine, a resume, one-pixel;
an old ``--limit`` folder (index = position in the subset) is refused in one line."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.config import AttackConfig, Method
from cifar10_fgs.data import load_cifar10
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.manifest import FILE as MANIFEST
from cifar10_fgs.dataset.shards import read_shard
from cifar10_fgs.errors import Cifar10Error, ExistingOutputError
from cifar10_fgs.generate.combine import combine_workers
from cifar10_fgs.generate.core import GenerateOptions, generate_dataset
from cifar10_fgs.validate import validate_dataset

from helpers import assert_rows_join_cifar10, disk_full_at_shard_write, folder_bytes, generate_cli

CFG = AttackConfig(batch_size=32)
OPTS = GenerateOptions(limit=20, seed=3, rows_per_shard=7, with_originals=True)  # train and test: 3 shards each


def manifest_json(out) -> dict:
    return json.loads((out / MANIFEST).read_text())


def rows_by_index(out, split: str) -> dict[int, dict]:
    """Every stored row of ``split`` by its index, all columns but ``original_image``."""
    tables = [read_shard(p) for p in sorted((out / "data").glob(f"{split}-*.arrow"))]
    rows = {}
    for t in tables:
        for row in t.drop_columns([c for c in t.column_names if c == "original_image"]).to_pylist():
            rows[row["index"]] = row
    return rows


@pytest.fixture(scope="module")
def limited(tmp_path_factory, tiny_keras_path, image_folder_source):
    root, _ = image_folder_source
    out = tmp_path_factory.mktemp("limited") / "ds"
    generate_dataset(out, tiny_keras_path, dataclasses.replace(OPTS, cifar10=root, attack=CFG), allow_failures=True)
    return out


def test_every_row_joins_cifar10_by_index_with_no_mapping(limited, image_folder_source, tiny_keras_path):
    root, _ = image_folder_source
    indices = assert_rows_join_cifar10(limited, root)  # datasets.load_dataset, label and pixels at CIFAR-10[index]
    manifest = manifest_json(limited)
    for split in ("train", "test"):
        rows = manifest["config"]["splits"][split]["subset"]["original_rows"]
        failures = manifest["summary"][split]["failures"]
        assert rows != list(range(20))  # a real subset of the 60 / 40 rows, so position != row
        assert sorted([*indices[split].tolist(), *failures]) == rows  # failures are CIFAR-10 rows too
        entries = sorted((e for e in manifest["shards"].values() if e["split"] == split), key=lambda e: e["shard"])
        spans = [[rows[k * 7], rows[min(k * 7 + 6, 19)] + 1] for k in range(3)]
        assert [e["index_range"] for e in entries] == spans  # the CIFAR-10 rows of 7 consecutive subset rows
        for e in entries:
            lo, hi = e["index_range"]
            assert all(lo <= i < hi for i in e["failures"])
    assert manifest["summary"]["test"]["num_images"] == 20
    assert validate_dataset(limited, tiny_keras_path, cifar10=root).ok


def test_a_limit_row_is_the_row_a_whole_split_run_writes(limited, image_folder_source, tiny_keras_path, tmp_path):
    """Stream ids (which seed restarts) are CIFAR-10 rows: a row's result does not depend on the subset."""
    root, _ = image_folder_source
    whole = tmp_path / "whole"
    generate_dataset(
        whole,
        tiny_keras_path,
        dataclasses.replace(GenerateOptions(rows_per_shard=25), cifar10=root, attack=CFG),
        allow_failures=True,
    )
    for split in ("train", "test"):
        mine, theirs = rows_by_index(limited, split), rows_by_index(whole, split)
        assert mine and all(theirs[i] == row for i, row in mine.items())
        rows = set(manifest_json(limited)["config"]["splits"][split]["subset"]["original_rows"])
        whole_failures = set(manifest_json(whole)["summary"][split]["failures"])
        assert set(manifest_json(limited)["summary"][split]["failures"]) == whole_failures & rows


def test_two_workers_and_combine_write_the_single_run(limited, image_folder_source, tiny_keras_path, tmp_path):
    root, _ = image_folder_source
    parts = []
    for i in range(2):
        parts.append(tmp_path / f"worker{i}")
        options = GenerateOptions(**{**OPTS.__dict__, "num_workers": 2, "worker_index": i})
        generate_dataset(
            parts[-1], tiny_keras_path, dataclasses.replace(options, cifar10=root, attack=CFG), allow_failures=True
        )
    combined = tmp_path / "combined"
    combine_workers(combined, parts)
    single = folder_bytes(limited)
    assert {k: v for k, v in folder_bytes(combined).items() if k != MANIFEST} == {
        k: v for k, v in single.items() if k != MANIFEST
    }
    assert {k: manifest_json(combined)[k] for k in ("shards", "summary", "config")} == {
        k: manifest_json(limited)[k] for k in ("shards", "summary", "config")
    }
    assert_rows_join_cifar10(combined, root)


def test_a_resumed_run_is_byte_identical(limited, image_folder_source, tiny_keras_path, tmp_path, monkeypatch):
    root, _ = image_folder_source
    target = tmp_path / "crashed"
    with disk_full_at_shard_write(monkeypatch, 3), pytest.raises(OSError):
        generate_dataset(
            target, tiny_keras_path, dataclasses.replace(OPTS, cifar10=root, attack=CFG), allow_failures=True
        )
    assert 2 <= len(list((target / "data").iterdir())) < 6
    resumed = generate_dataset(
        target, tiny_keras_path, dataclasses.replace(OPTS, cifar10=root, attack=CFG), allow_failures=True
    )
    assert 0 < resumed.images_attacked < 40
    assert folder_bytes(target) == folder_bytes(limited)
    assert_rows_join_cifar10(target, root)


def test_onepixel_under_limit_stores_the_cifar10_row(image_folder_source, tiny_keras_path, tmp_path):
    root, _ = image_folder_source
    out = tmp_path / "onepixel"
    options = GenerateOptions(splits=("test",), limit=4, seed=1, with_originals=True, method=Method.ONEPIXEL)
    generate_dataset(out, tiny_keras_path, dataclasses.replace(options, cifar10=root), allow_failures=True)
    full, manifest = load_cifar10(root, "test"), manifest_json(out)
    rows = manifest["config"]["splits"]["test"]["subset"]["original_rows"]
    table = read_shard(next((out / "data").iterdir()))
    index = np.asarray(table.column("index").to_pylist(), np.int64)
    assert sorted([*index.tolist(), *manifest["summary"]["test"]["failures"]]) == rows != list(range(4))
    assert np.array_equal(np.asarray(table.column("label").to_pylist()), full.labels[index])
    assert validate_dataset(
        out, tiny_keras_path, cifar10=root
    ).ok  # one pixel differs from CIFAR-10[index], originals equal


# --------------------------------------------------------------------------- an old --limit folder


@pytest.fixture
def old_style(limited, tmp_path):
    """The limited folder as the code before the CIFAR-10 index recorded it: a subset without ``index``."""
    old = tmp_path / "old"
    shutil.copytree(limited, old)
    obj = manifest_json(old)
    for split in obj["config"]["splits"].values():
        del split["subset"]["index"]
    (old / MANIFEST).write_text(json.dumps(obj))
    return old


def test_an_old_limit_folder_is_refused_in_one_line_by_every_reader(
    old_style, image_folder_source, tiny_keras_path, tmp_path, capsys
):
    from cifar10_fgs.evaluate import TransferOptions, evaluate_transfer

    root, _ = image_folder_source
    with pytest.raises(mf.StaleIndexError) as read:
        mf.read(old_style)
    line = str(read.value)
    assert "\n" not in line and "position in the subset" in line and "--overwrite" in line
    report = validate_dataset(old_style, tiny_keras_path, cifar10=root)
    assert not report.ok and [f.message for f in report.failures] == [line]
    with pytest.raises(Cifar10Error, match="--overwrite"):
        evaluate_transfer(old_style, tiny_keras_path, TransferOptions(cifar10=root))
    with pytest.raises(mf.StaleIndexError):
        combine_workers(tmp_path / "combined", [old_style])
    with pytest.raises(ExistingOutputError, match="position in the subset.*--overwrite"):  # resume: nothing replaced
        generate_dataset(
            old_style, tiny_keras_path, dataclasses.replace(OPTS, cifar10=root, attack=CFG), allow_failures=True
        )
    args = generate_cli(tiny_keras_path, root, old_style, "--limit", "20", "--allow-failures")
    assert run_with_friendly_errors(cli, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "position in the subset" in err and "--overwrite" in err
    assert run_with_friendly_errors(cli, ["card", str(old_style)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "position in the subset" in err and "--overwrite" in err


def test_overwrite_regenerates_an_old_limit_folder(old_style, limited, image_folder_source, tiny_keras_path):
    root, _ = image_folder_source
    generate_dataset(
        old_style,
        tiny_keras_path,
        dataclasses.replace(OPTS, cifar10=root, attack=CFG),
        allow_failures=True,
        overwrite=True,
    )
    assert folder_bytes(old_style) == folder_bytes(limited)


def test_a_subset_of_every_row_needs_no_marker(limited):
    """A subset that is rows 0..limit-1 stored positions equal to rows: read as it is."""
    obj = manifest_json(limited)
    subset = obj["config"]["splits"]["test"]["subset"]
    subset.update(original_rows=list(range(20)))
    del subset["index"]
    assert mf.Manifest.from_json(obj).config.splits["test"].subset.index == "cifar10_row"
