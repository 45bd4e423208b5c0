"""Training the target (Fig. 2) on small synthetic data: outputs, provenance, refusal, resume, --limit."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from cifar10_fgs.config import TARGET_RECIPE, Arch
from cifar10_fgs.data import Cifar10Split, load_cifar10
from cifar10_fgs.errors import ConfigError, OutputError
from cifar10_fgs.models import load_model
from cifar10_fgs.training import (
    TrainResult, evaluate_model, model_metadata_path, read_model_metadata, train_from_source, train_model,
)
from conftest import synthetic_images

RECIPE = dataclasses.replace(TARGET_RECIPE, epochs=2, batch_size=50)


@pytest.fixture(scope="module")
def splits():
    train = Cifar10Split(*synthetic_images(200, seed=21), source="synthetic", split="train")
    test = Cifar10Split(*synthetic_images(60, seed=22), source="synthetic", split="test")
    return train, test


@pytest.fixture(scope="module")
def trained(splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "target.keras"
    result = train_model(*splits, out, arch="target", recipe=RECIPE, seed=7)
    return out, result


def _history_epochs(out: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in out.with_suffix(".history.jsonl").read_text().splitlines()]


def test_train_writes_model_and_provenance(trained, splits):
    out, result = trained
    train, test = splits
    assert isinstance(result, TrainResult) and Path(result.model_path) == out
    meta_path = model_metadata_path(out)
    assert meta_path == out.with_suffix(".json") and Path(result.metadata_path) == meta_path
    meta = json.loads(meta_path.read_text())
    assert read_model_metadata(out) == meta
    assert meta["arch"] == "target" and meta["seed"] == 7 and meta["epochs"] == 2
    assert meta["recipe"]["epochs"] == 2 and meta["recipe"]["batch_size"] == 50 and meta["recipe"]["arch"] == "target"
    assert meta["train_data"] == {"source": "synthetic", "fingerprint": train.fingerprint(), "num_images": 200}
    assert meta["test_data"]["fingerprint"] == test.fingerprint() and meta["test_data"]["num_images"] == 60
    assert meta["sha256"] == result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    for lib in ("tensorflow", "keras", "numpy", "datasets"):
        assert meta["library_versions"][lib] == metadata.version(lib)
    assert meta["outputs"] == "logits"
    assert [row["epoch"] for row in meta["history"]] == [1, 2] == _history_epochs(out)
    assert all("loss" in row and "val_accuracy" in row for row in meta["history"])
    assert not Path(f"{out}.ckpt").exists()
    # the saved file is the model that was scored: reload it (safe mode) and score it again
    model = load_model(out)
    acc, loss = evaluate_model(model, test.images, test.labels)
    assert meta["test_accuracy"] == acc == result.test_accuracy and 0.0 <= acc <= 1.0
    assert meta["test_loss"] == pytest.approx(loss, rel=1e-6) and np.isfinite(loss)
    assert model.count_params() == 1_250_858 and getattr(model, "optimizer", None) is None  # weights only


def test_train_split_accuracy_is_recorded_as_the_saved_model_scores_it(trained, splits):
    out, result = trained
    train, _ = splits
    meta = json.loads(model_metadata_path(out).read_text())
    acc, loss = evaluate_model(load_model(out), train.images, train.labels)  # the training images, not augmented
    assert meta["train_accuracy"] == acc == result.train_accuracy and 0.0 <= acc <= 1.0
    assert meta["train_loss"] == pytest.approx(loss, rel=1e-6) == result.train_loss


def test_the_manifest_and_card_carry_the_sources_train_split_accuracy(trained, splits, tmp_path):
    from cifar10_fgs import manifest as mf
    from cifar10_fgs.attack import AttackConfig
    from cifar10_fgs.card import write_card
    from cifar10_fgs.generate import GenerateOptions, generate_dataset

    out, result = trained
    train, test = splits
    ds = tmp_path / "ds"
    generate_dataset(out, "synthetic", ds, AttackConfig(batch_size=32, max_iterations=3),
                     GenerateOptions(limit=20), data={"train": train, "test": test}, allow_failures=True)
    assert mf.read(ds).source_model.train_accuracy == result.train_accuracy
    write_card(ds, "someone/adv-cifar10")
    card = (ds / "README.md").read_text()
    assert f"| train-split accuracy (unaugmented) | {result.train_accuracy:.4f} |" in card


def test_existing_output_is_refused_and_left_untouched(trained, splits):
    out, _ = trained
    meta_path = model_metadata_path(out)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out, meta_path)}
    with pytest.raises(OutputError, match="already exists: pass --overwrite"):
        train_model(*splits, out, arch="target", recipe=RECIPE, seed=7)
    with pytest.raises(OutputError, match="already exists"):
        train_from_source("/nonexistent/source", out, arch="target")
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out, meta_path)} == before
    assert not Path(f"{out}.ckpt").exists()


def test_bad_output_paths_are_config_errors(splits, tmp_path):
    with pytest.raises(ConfigError, match=r"must end in \.keras"):
        train_model(*splits, tmp_path / "model.h5", arch="target", recipe=RECIPE)
    (tmp_path / "dir.keras").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        train_model(*splits, tmp_path / "dir.keras", arch="target", recipe=RECIPE)
    with pytest.raises(ConfigError, match="--imagenet applies to the source model only"):
        train_from_source("x", tmp_path / "m.keras", arch=Arch.TARGET, imagenet=True)


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_from_its_checkpoint(splits, tmp_path):
    import keras

    out = tmp_path / "resume.keras"
    recipe = RECIPE  # 2 epochs

    class StopAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.weights = [np.array(w) for w in self.model.get_weights()]
            self.iterations = int(self.model.optimizer.iterations.numpy())
            raise Interrupted  # like a kill right after epoch 1 was saved

    stop = StopAfterFirstEpoch()
    with pytest.raises(Interrupted):
        train_model(*splits, out, arch="target", recipe=recipe, seed=3, callbacks=[stop])
    assert not out.exists() and not model_metadata_path(out).exists()
    assert Path(f"{out}.ckpt").is_dir() and _history_epochs(out) == [1]
    assert stop.iterations == 4  # 200 images / 50 per step

    # another run's settings do not silently continue this checkpoint
    with pytest.raises(OutputError, match="checkpoint of a different training run"):
        train_model(*splits, out, arch="target", recipe=recipe, seed=4)

    class Record(keras.callbacks.Callback):
        epochs: list

        def on_train_begin(self, logs=None):  # runs after BackupAndRestore restored the state
            self.epochs = []
            self.weights = [np.array(w) for w in self.model.get_weights()]
            self.iterations = int(self.model.optimizer.iterations.numpy())

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(epoch)

    record = Record()
    result = train_model(*splits, out, arch="target", recipe=recipe, seed=3, callbacks=[record])
    assert record.epochs == [1]  # only epoch 2 (0-based 1): epoch 1 was not trained again
    assert record.iterations == stop.iterations
    assert len(record.weights) == len(stop.weights)
    for restored, saved in zip(record.weights, stop.weights):
        np.testing.assert_array_equal(restored, saved)
    assert _history_epochs(out) == [1, 2]
    meta = read_model_metadata(out)
    assert [row["epoch"] for row in meta["history"]] == [1, 2] and result.epochs == 2
    assert not Path(f"{out}.ckpt").exists() and out.is_file()


def test_cli_train_with_limit_uses_a_seeded_random_subset(image_folder_source, tmp_path, capsys):
    """Also: --overwrite replaces an old model and its stale history; without it a rerun is refused."""
    from cifar10_fgs.cli._errors import run_with_friendly_errors
    from cifar10_fgs.cli.main import cli

    root, _ = image_folder_source
    out = tmp_path / "limited.keras"
    out.write_bytes(b"an old model")
    out.with_suffix(".history.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3}\n')
    args = ["train", "--arch", "target", "--source", str(root), "--out", str(out), "--epochs", "1",
            "--limit", "20", "--seed", "5", "--json"]
    capsys.readouterr()
    assert run_with_friendly_errors(cli, [*args, "--overwrite"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model_path"] == str(out) and out.is_file()
    meta = read_model_metadata(out)
    full = load_cifar10(root, "train")  # an image folder: rows sorted by class
    assert meta["train_data"]["num_images"] == 20 and meta["epochs"] == 1 and meta["seed"] == 5
    assert meta["train_data"]["fingerprint"] == full.sample(20, seed=5).fingerprint()
    assert meta["train_data"]["fingerprint"] != full.head(20).fingerprint()
    assert meta["test_data"]["num_images"] == len(load_cifar10(root, "test"))  # the test split is not limited
    assert _history_epochs(out) == [1]  # the old run's rows are gone
    assert meta["sha256"] == printed["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()

    # rerunning the same command refuses to overwrite: one line, exit 2, file untouched
    before = out.read_bytes()
    assert run_with_friendly_errors(cli, args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and "already exists" in err[0]
    assert out.read_bytes() == before
