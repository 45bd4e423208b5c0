"""generation.json through its one owner: typed reading, faithful rewriting, old keys, bad folders."""

from __future__ import annotations

import json

import pytest

from cifar10_fgs.config import Method
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.errors import NotADatasetError, ValidationError


def written_by_generate() -> dict:
    """A manifest as `generate` writes it for a 30-row test split in two shards (one failure)."""
    return {
        "config": {
            "format_version": 1,
            "method": "fgs",
            "model_sha256": "ab" * 32,
            "rows_per_shard": 25,
            "replicas": 1,
            "with_originals": False,
            "attack": {"step": 0.01, "max_iterations": 200, "batch_size": 32, "pixel_min": 0.0, "pixel_max": 255.0},
            "splits": {"test": {"fingerprint": "cd" * 32, "num_rows": 30, "num_shards": 2}},
        },
        "source_model": {
            "path": "m.keras",
            "sha256": "ab" * 32,
            "architecture": "tiny",
            "test_accuracy": None,
            "test_loss": None,
            "recipe": None,
            "train_data": None,
            "outputs": "logits",
        },
        "data_source": {"source": "src", "splits": {"test": "image folder src"}},
        "library_versions": {"numpy": "2.0"},
        "worker": {"num_workers": 1, "worker_index": 0},
        "shards": {
            "data/test-00000-of-00002.arrow": {
                "split": "test",
                "shard": 0,
                "rows": 24,
                "sha256": "ef" * 32,
                "bytes": 1000,
                "index_range": [0, 25],
                "failures": [7],
            },
            "data/test-00001-of-00002.arrow": {
                "split": "test",
                "shard": 1,
                "rows": 5,
                "sha256": "01" * 32,
                "bytes": 300,
                "index_range": [25, 30],
                "failures": [],
            },
        },
        "complete": True,
        "summary": {
            "test": {
                "num_images": 30,
                "num_rows": 29,
                "failures": [7],
                "fooled_percent": 96.6667,
                "linf": {"mean": 0.01, "median": 0.01, "max": 0.02},
            }
        },
        "timing": {"shard_seconds": {"data/test-00000-of-00002.arrow": 1.5}, "seconds_total": 2.25, "runs": 1},
    }


def write(d, obj) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / mf.FILE).write_text(json.dumps(obj))


def test_reads_typed_records_and_writes_them_back_unchanged(tmp_path):
    obj = written_by_generate()
    write(tmp_path, obj)
    m = mf.read(tmp_path)
    assert m.config.method is Method.FGS and m.config.splits["test"].num_rows == 30
    assert m.failures("test") == (7,) and m.stored_rows() == {"test": 29}
    assert m.config.max_iterations == 200 and m.config.predict_batch_size == 32
    assert m.timing.attack_seconds == 2.25
    assert m.summary["test"].fooled_percent == 96.6667
    mf.write(tmp_path, m)
    assert json.loads((tmp_path / mf.FILE).read_text()) == obj


def test_keys_a_newer_writer_adds_survive_a_rewrite(tmp_path):
    obj = written_by_generate()
    obj["config"]["stall"] = {"patience": 5}  # settings a later version records
    obj["summary"]["test"]["margins"] = {"p50": 0.5}
    obj["shards"]["data/test-00000-of-00002.arrow"]["phase_counts"] = [20, 4]
    obj["provenance_note"] = "kept"
    write(tmp_path, obj)
    m = mf.read(tmp_path)
    assert m.summary["test"].extra == {"margins": {"p50": 0.5}}
    mf.write(tmp_path, m.replace(complete=False))
    back = json.loads((tmp_path / mf.FILE).read_text())
    assert back == {**obj, "complete": False}


def test_a_folder_that_is_no_dataset_is_bad_input_and_a_broken_manifest_is_a_failure(tmp_path):
    with pytest.raises(NotADatasetError) as err:
        mf.read(tmp_path / "nope")
    assert err.value.exit_code == 2 and "does not exist" in str(err.value)
    with pytest.raises(NotADatasetError, match="holds no generation.json"):
        mf.read(tmp_path)
    obj = written_by_generate()
    del obj["config"]["rows_per_shard"]
    write(tmp_path, obj)
    with pytest.raises(mf.ManifestError) as err:
        mf.read(tmp_path)
    assert err.value.exit_code == 1 and "rows_per_shard" in str(err.value) and "\n" not in str(err.value)


def test_complete_requires_every_listed_shard_with_its_size(tmp_path):
    obj = written_by_generate()
    write(tmp_path, obj)
    with pytest.raises(ValidationError, match="missing"):
        mf.read(tmp_path, complete=True)
    for name, entry in obj["shards"].items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * entry["bytes"])
    assert mf.read(tmp_path, complete=True).complete
    obj["complete"] = False
    write(tmp_path, obj)
    with pytest.raises(ValidationError, match="incomplete"):
        mf.read(tmp_path, complete=True)


@pytest.mark.parametrize(("key", "value"), [("with_originals", "false"), ("replicas", "2"), ("replicas", True)])
def test_a_flag_or_count_of_the_wrong_json_type_is_refused_not_coerced(tmp_path, key, value):
    obj = written_by_generate()
    obj["config"][key] = value  # "false" would read as True through bool()
    write(tmp_path, obj)
    with pytest.raises(mf.ManifestError, match=f"config.{key} is"):
        mf.read(tmp_path)
