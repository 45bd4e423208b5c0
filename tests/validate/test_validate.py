"""``validate``: a real generated folder passes; each kind of damage is caught and named."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from PIL import Image

from cifar10_fgs.config import AttackConfig
from cifar10_fgs.dataset.shards import encode_png, read_shard, write_table_atomic
from cifar10_fgs.errors import NotADatasetError, ValidationError
from cifar10_fgs.generate.core import GenerateOptions, generate_dataset
from cifar10_fgs.provenance import read_json, write_json
from cifar10_fgs.validate import CHECKS, validate_dataset


@pytest.fixture(scope="module")
def generated(tmp_path_factory, tiny_keras_path, image_folder_source):
    """A real folder written by generate: train 60 rows in shards of 25 (3), test 40 (2)."""
    root, _ = image_folder_source
    out = tmp_path_factory.mktemp("gen") / "ds"
    generate_dataset(
        out, tiny_keras_path, GenerateOptions(cifar10=root, attack=AttackConfig(batch_size=32), rows_per_shard=25)
    )
    return out


@pytest.fixture
def ds(generated, tmp_path) -> Path:
    """A private copy of the generated folder, free to damage."""
    return Path(shutil.copytree(generated, tmp_path / "ds"))


@pytest.fixture(scope="module")
def generated_with_originals(tmp_path_factory, tiny_keras_path, image_folder_source):
    """The test split only, with the original_image column."""
    root, _ = image_folder_source
    out = tmp_path_factory.mktemp("gen_orig") / "ds"
    generate_dataset(
        out,
        tiny_keras_path,
        GenerateOptions(
            cifar10=root, attack=AttackConfig(batch_size=32), splits=("test",), rows_per_shard=25, with_originals=True
        ),
    )
    return out


def manifest(d: Path) -> dict:
    return read_json(d / "generation.json")


def shard_of(d: Path, split: str, k: int) -> str:
    return next(n for n, e in manifest(d)["shards"].items() if e["split"] == split and e["shard"] == k)


def rewrite_shard(d: Path, name: str, table: pa.Table) -> None:
    """Replace a shard's content and update generation.json so that sha256, bytes and rows agree."""
    digest, size = write_table_atomic(table, d / name, d / ".tmp")
    shutil.rmtree(d / ".tmp")
    m = manifest(d)
    m["shards"][name].update(sha256=digest, bytes=size, rows=table.num_rows)
    write_json(d / "generation.json", m)


def replace_cell(table: pa.Table, column: str, row: int, value) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row] = value
    return table.set_column(
        table.schema.get_field_index(column),
        table.schema.field(column),
        pa.array(values, type=table.schema.field(column).type),
    )


def write_real_card(d: Path) -> Path:
    from cifar10_fgs.publish.card import write_card

    return Path(write_card(d).path)


def edit_front_matter(readme: Path, edit) -> None:
    """Parse the card's YAML header, let ``edit`` change it, and write it back (as a person would by hand)."""
    text = readme.read_text()
    _, header, body = text.split("---\n", 2)
    meta = yaml.safe_load(header)
    edit(meta)
    readme.write_text("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body)


def stored_counts(d: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in manifest(d)["shards"].values():
        counts[e["split"]] = counts.get(e["split"], 0) + e["rows"]
    return counts


def only(report, check):
    fails = report.failures_of(check)
    assert fails, f"no {check} failure in {report.failures}"
    return fails


# --------------------------------------------------------------------------- clean


def test_clean_folder_passes_every_check(ds, tiny_keras_path, image_folder_source):
    report = validate_dataset(ds, tiny_keras_path, cifar10=image_folder_source[0])
    assert report.ok, report.failures
    status = {c.name: c.status for c in report.checks}
    assert set(status) == set(CHECKS)
    assert status["card"] == "skipped" and status["original_image"] == "skipped"
    assert all(s == "passed" for n, s in status.items() if n not in ("card", "original_image")), status
    counts = {s.split: s for s in report.splits}
    assert {s: c.stored_rows for s, c in counts.items()} == stored_counts(ds)
    assert counts["train"].num_rows == 60 and counts["test"].num_rows == 40
    assert report.check("misclassified").checked == sum(stored_counts(ds).values())
    assert report.check("unchanged_rows").checked > 0  # the 5 rows per split the model already got wrong
    d = report.to_dict()
    assert json.loads(json.dumps(d))["ok"] is True
    report.raise_for_failures()


def test_without_model_the_model_checks_are_skipped(ds):
    report = validate_dataset(ds)
    assert report.ok
    for name in ("model_file", "misclassified", "adversarial_prediction"):
        assert report.check(name).status == "skipped"
    assert "no --source-model" in report.check("misclassified").note


# --------------------------------------------------------------------------- file damage


def test_truncated_shard_is_named(ds):
    name = shard_of(ds, "train", 1)
    path = ds / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    report = validate_dataset(ds)
    assert not report.ok
    fails = only(report, "shard_integrity")
    assert [f.shard for f in fails] == [name]
    assert "bytes" in fails[0].message
    # its rows cannot be read back: named by the schema or coverage checks, not silently passed
    assert any(f.shard == name for f in report.failures if f.check in ("shard_schema", "coverage"))


def test_one_flipped_byte_is_named(ds):
    name = shard_of(ds, "test", 0)
    path = ds / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = validate_dataset(ds)
    fails = only(report, "shard_integrity")
    assert [f.shard for f in fails] == [name]
    assert "sha256" in fails[0].message


def test_missing_shard_is_named(ds):
    name = shard_of(ds, "train", 2)
    (ds / name).unlink()
    report = validate_dataset(ds)
    fails = only(report, "shard_files")
    assert [f.shard for f in fails] == [name]
    assert "missing" in fails[0].message
    assert [f.shard for f in report.failures_of("coverage")] == [name]


def test_foreign_file_in_data_is_named(ds):
    (ds / "data" / "notes.txt").write_text("not a shard")
    report = validate_dataset(ds)
    assert report.failed_checks == ("shard_files",)
    (fail,) = report.failures
    assert fail.shard == "data/notes.txt" and "foreign" in fail.message


def test_incomplete_manifest_fails(ds):
    m = manifest(ds)
    m["complete"] = False
    write_json(ds / "generation.json", m)
    report = validate_dataset(ds)
    assert report.failed_checks == ("manifest",)
    assert "complete" in report.failures[0].message


# --------------------------------------------------------------------------- row damage


def test_duplicated_row_is_named(ds, tiny_keras_path, image_folder_source):
    name = shard_of(ds, "train", 0)
    table = read_shard(ds / name)
    n = table.num_rows
    rewrite_shard(ds, name, pa.concat_tables([table, table.slice(3, 1)]))
    report = validate_dataset(ds, tiny_keras_path, cifar10=image_folder_source[0])
    assert report.failed_checks == ("indices",), report.failures
    (fail,) = report.failures
    dup = table.column("index")[3].as_py()
    assert (fail.shard, fail.row, fail.index) == (name, n, dup)
    assert "duplicated" in fail.message and "row 3" in fail.message


def test_image_replaced_by_its_original_is_named(ds, tiny_keras_path, image_folder_source):
    _, data = image_folder_source
    name = shard_of(ds, "test", 1)
    table = read_shard(ds / name)
    iterations = table.column("iterations").to_numpy()
    row = int(np.flatnonzero(iterations > 0)[0])  # an attacked row: its original is classified correctly
    index = table.column("index")[row].as_py()
    original = data["test"][0][index]
    rewrite_shard(ds, name, replace_cell(table, "image", row, {"bytes": encode_png(original), "path": None}))
    report = validate_dataset(ds, tiny_keras_path)
    assert set(report.failed_checks) <= {"misclassified", "adversarial_prediction"}
    (fail,) = only(report, "misclassified")
    assert (fail.shard, fail.row, fail.index) == (name, row, index)
    assert "not adversarial" in fail.message


def test_edited_distance_is_caught_against_the_source(ds, tiny_keras_path, image_folder_source):
    name = shard_of(ds, "train", 1)
    table = read_shard(ds / name)
    row = int(np.flatnonzero(table.column("iterations").to_numpy() > 0)[0])
    linf = table.column("linf")[row].as_py()
    rewrite_shard(ds, name, replace_cell(table, "linf", row, linf / 2))
    assert validate_dataset(ds, tiny_keras_path).ok  # only the source can tell
    report = validate_dataset(ds, tiny_keras_path, cifar10=image_folder_source[0])
    assert report.failed_checks == ("perturbation",)
    (fail,) = report.failures
    assert (fail.shard, fail.row) == (name, row) and "linf" in fail.message


def test_undecodable_image_is_named(ds):
    name = shard_of(ds, "test", 0)
    table = read_shard(ds / name)
    rewrite_shard(ds, name, replace_cell(table, "image", 4, {"bytes": b"\x89PNG not really", "path": None}))
    report = validate_dataset(ds)
    (fail,) = only(report, "images")
    assert (fail.shard, fail.row) == (name, 4)


def test_dropped_row_is_named_unless_listed_as_a_failure(ds, tiny_keras_path):
    name = shard_of(ds, "train", 1)
    table = read_shard(ds / name)
    dropped = table.column("index")[7].as_py()
    rewrite_shard(ds, name, pa.concat_tables([table.slice(0, 7), table.slice(8)]))
    report = validate_dataset(ds, tiny_keras_path)
    assert report.failed_checks == ("coverage",)
    (fail,) = report.failures
    assert (fail.shard, fail.index) == (name, dropped)
    # listed in generation.json as not fooled, the row is accounted for
    m = manifest(ds)
    m["shards"][name]["failures"] = [dropped]
    write_json(ds / "generation.json", m)
    report = validate_dataset(ds, tiny_keras_path)
    assert report.ok, report.failures
    assert {s.split: s.listed_failures for s in report.splits}["train"] == 1


def test_row_moved_to_another_shard_is_named(ds):
    name = shard_of(ds, "train", 1)  # rows 25..49
    table = read_shard(ds / name)
    lost = table.column("index")[0].as_py()
    rewrite_shard(ds, name, replace_cell(table, "index", 0, 0))  # index 0 belongs to shard 0, stored there
    report = validate_dataset(ds)
    assert set(report.failed_checks) == {"indices", "coverage"}
    messages = [(f.shard, f.row, f.index) for f in report.failures_of("indices")]
    assert messages == [(name, 0, 0), (name, 0, 0)]  # outside the shard's range, and a duplicate
    assert [(f.shard, f.index) for f in report.failures_of("coverage")] == [(name, lost)]


@pytest.fixture
def limited(tmp_path, tiny_keras_path, image_folder_source) -> Path:
    """A --limit folder: 20 of the 40 test rows, shards of 8; index is the CIFAR-10 row."""
    root, _ = image_folder_source
    out = tmp_path / "limited"
    options = GenerateOptions(
        cifar10=root,
        attack=AttackConfig(batch_size=32),
        splits=("test",),
        limit=20,
        seed=5,
        rows_per_shard=8,
        with_originals=True,
    )
    generate_dataset(out, tiny_keras_path, options, allow_failures=True)
    return out


def test_a_limit_folder_is_checked_by_cifar10_row(limited, tiny_keras_path, image_folder_source):
    root, _ = image_folder_source
    rows = manifest(limited)["config"]["splits"]["test"]["subset"]["original_rows"]
    assert rows != list(range(20))
    assert validate_dataset(limited, tiny_keras_path, cifar10=root).ok  # pixels, labels, originals at CIFAR-10[index]
    name = shard_of(limited, "test", 1)  # subset rows 8..15
    table = read_shard(limited / name)
    lost = table.column("index")[0].as_py()
    outside = next(i for i in range(rows[8], rows[15]) if i not in rows)  # in the shard's span, not in the subset
    rewrite_shard(limited, name, replace_cell(table, "index", 0, outside))
    report = validate_dataset(limited, cifar10=root)
    (bad,) = report.failures_of("indices")
    assert (bad.index, bad.row) == (outside, 0) and "the --limit subset lacks it" in bad.message
    assert [f.index for f in report.failures_of("coverage")] == [lost]  # named by its CIFAR-10 row
    # its label and pixels now belong to another CIFAR-10 row: the source checks say so too
    assert report.failures_of("original_image") and report.failures_of("perturbation")
    m = manifest(limited)
    m["shards"][name]["index_range"] = [8, 16]  # the positions, as an older reader might have written them
    write_json(limited / "generation.json", m)
    report = validate_dataset(limited)
    assert any("index_range [8, 16]" in f.message for f in report.failures_of("manifest"))


def test_onepixel_folder_bounds_changed_pixels_not_linf(ds, image_folder_source):
    root, data = image_folder_source
    m = manifest(ds)
    m["config"]["method"] = "onepixel"
    m["config"]["onepixel"] = {"population": 400, "max_generations": 200, "seed": 0, "batch_size": 32}
    write_json(ds / "generation.json", m)
    expected = set()
    for name, entry in m["shards"].items():
        table = read_shard(ds / name)
        adv = np.stack([np.asarray(Image.open(io.BytesIO(c["bytes"]))) for c in table.column("image").to_pylist()])
        orig = data[entry["split"]][0][table.column("index").to_numpy()]
        changed = (adv != orig).any(axis=-1).reshape(len(adv), -1).sum(axis=1)
        expected |= {(name, int(r)) for r in np.flatnonzero(changed > 1)}
    assert expected  # the FGS rows change many pixels
    report = validate_dataset(ds, cifar10=root)
    assert report.failed_checks == ("perturbation_bound",)
    assert {(f.shard, f.row) for f in report.failures} == expected
    assert all("one-pixel" in f.message for f in report.failures)


# --------------------------------------------------------------------------- model, source, card


def test_different_model_is_named(ds, tmp_path):
    from helpers import tiny_model

    other = tmp_path / "other.keras"
    tiny_model(seed=1).save(other)
    report = validate_dataset(ds, other)
    assert report.failed_checks == ("model_file",)
    assert "other.keras" in report.failures[0].message and "sha256" in report.failures[0].message
    assert report.check("misclassified").status == "skipped"


def test_wrong_source_is_named(ds, tmp_path, image_folder_source):
    from helpers import synthetic_images, write_image_folder

    _, data = image_folder_source
    root = tmp_path / "other_src"
    for split, (_images, labels) in data.items():
        write_image_folder(root, split, synthetic_images(len(labels), seed=9)[0], labels)
    report = validate_dataset(ds, cifar10=root)
    fails = only(report, "source_fingerprint")
    assert {f.split for f in fails} == {"train", "test"}
    assert report.failed_checks == ("source_fingerprint",)
    assert report.check("perturbation").status == "skipped"


def test_card_counts_edited_by_hand_are_named(ds):
    counts = stored_counts(ds)
    card = write_real_card(ds)
    report = validate_dataset(ds)
    assert report.ok, report.failures
    assert report.check("card").status == "passed"
    text = card.read_text()
    edited = text.replace(f"num_examples: {counts['train']}\n", f"num_examples: {counts['train'] + 1}\n")
    assert edited != text
    card.write_text(edited)
    report = validate_dataset(ds)
    assert report.failed_checks == ("card",)
    (fail,) = report.failures
    assert fail.split == "train" and fail.shard == "README.md" and str(counts["train"] + 1) in fail.message


def test_card_features_must_name_the_columns(ds):
    card = write_real_card(ds)

    def drop_iterations(meta):
        meta["dataset_info"]["features"] = [f for f in meta["dataset_info"]["features"] if f["name"] != "iterations"]

    edit_front_matter(card, drop_iterations)
    report = validate_dataset(ds)
    assert report.failed_checks == ("card",)
    (fail,) = report.failures
    assert "'iterations'" in fail.message


def test_card_without_dataset_info_is_skipped_with_a_note(ds):
    (ds / "README.md").write_text("---\nlicense: mit\n---\n# hello\n")
    report = validate_dataset(ds)
    assert report.ok and report.check("card").status == "skipped"
    assert "dataset_info" in report.check("card").note


def test_folder_without_manifest_is_bad_input(tmp_path):
    with pytest.raises(NotADatasetError) as err:
        validate_dataset(tmp_path)
    assert err.value.exit_code == 2 and "generation.json" in str(err.value)


def test_unreadable_manifest_is_a_failure(ds):
    (ds / "generation.json").write_text("{not json")
    report = validate_dataset(ds)
    assert report.failed_checks == ("manifest",)
    with pytest.raises(ValidationError) as err:
        report.raise_for_failures()
    assert err.value.exit_code == 1 and "\n" not in str(err.value)


# --------------------------------------------------------------------------- CLI


def run_cli(args):
    from cifar10_fgs.cli._errors import run_with_friendly_errors
    from cifar10_fgs.cli.main import cli

    return run_with_friendly_errors(cli, args)


def test_cli_exit_codes_and_json(ds, tiny_keras_path, tmp_path, capsys):
    assert run_cli(["validate", str(ds), "--source-model", str(tiny_keras_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["failed_checks"] == []

    assert run_cli(["validate", str(ds), "-q"]) == 0
    text = capsys.readouterr().out
    assert "misclassified" in text and "skipped" in text and "passed" in text

    (ds / "data" / "stray.arrow").write_bytes(b"x")
    assert run_cli(["validate", str(ds), "--json"]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["ok"] is False and out["failed_checks"] == ["shard_files"]
    assert out["failures"][0]["shard"] == "data/stray.arrow"
    assert captured.err.startswith("Error: ") and captured.err.count("\n") == 1

    assert run_cli(["validate", str(ds), "-q"]) == 1
    assert "data/stray.arrow" in capsys.readouterr().out

    assert run_cli(["validate", str(tmp_path / "nothing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(["validate", str(empty)]) == 2
    assert "generation.json" in capsys.readouterr().err


def test_original_image_column_is_checked_against_the_source(
    generated_with_originals, tmp_path, tiny_keras_path, image_folder_source
):
    root, data = image_folder_source
    ds = Path(shutil.copytree(generated_with_originals, tmp_path / "ds"))
    report = validate_dataset(ds, tiny_keras_path, cifar10=root)
    assert report.ok, report.failures
    assert report.check("original_image").status == "passed"
    assert report.check("original_image").checked == stored_counts(ds)["test"]

    name = shard_of(ds, "test", 0)
    table = read_shard(ds / name)
    other = data["test"][0][table.column("index")[1].as_py()]
    rewrite_shard(ds, name, replace_cell(table, "original_image", 0, {"bytes": encode_png(other), "path": None}))
    report = validate_dataset(ds, tiny_keras_path, cifar10=root)
    assert report.failed_checks == ("original_image",)
    (fail,) = report.failures
    assert (fail.shard, fail.row) == (name, 0)
