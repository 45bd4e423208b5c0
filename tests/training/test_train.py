"""Training the target (Fig. 2) on small synthetic data: outputs, provenance, refusal, resume, --train-limit."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from cifar10_fgs.data import Cifar10Split, load_cifar10
from cifar10_fgs.errors import ConfigError, ModelError, OutputError
from cifar10_fgs.models.networks import load_model
from cifar10_fgs.recipes import TARGET_RECIPE, Arch
from cifar10_fgs.training.saved import (
    TrainResult,
    evaluate_model,
    model_metadata_path,
    read_model_metadata,
    trained_model_matches,
)
from cifar10_fgs.training.train import train_from_cifar10, train_model

from helpers import synthetic_images

RECIPE = dataclasses.replace(TARGET_RECIPE, epochs=2, batch_size=50)


@pytest.fixture(scope="module")
def splits():
    train = Cifar10Split(*synthetic_images(200, seed=21), origin="synthetic", split="train")
    test = Cifar10Split(*synthetic_images(60, seed=22), origin="synthetic", split="test")
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
    from cifar10_fgs.config import AttackConfig
    from cifar10_fgs.dataset import manifest as mf
    from cifar10_fgs.generate.core import GenerateOptions, generate_dataset
    from cifar10_fgs.publish.card import write_card

    out, result = trained
    train, test = splits
    ds = tmp_path / "ds"
    generate_dataset(
        ds,
        out,
        GenerateOptions(cifar10="synthetic", attack=AttackConfig(batch_size=32, max_iterations=3), limit=20),
        data={"train": train, "test": test},
        allow_failures=True,
    )
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
        train_from_cifar10("/nonexistent/source", out, arch="target")
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out, meta_path)} == before
    assert not Path(f"{out}.ckpt").exists()


def test_a_file_of_the_users_where_the_provenance_json_goes_is_kept(splits, tmp_path, capsys):
    from cifar10_fgs.cli._errors import run_with_friendly_errors
    from cifar10_fgs.cli.main import cli

    out = tmp_path / "results.keras"
    notes = tmp_path / "results.json"  # not a model's provenance: train would write it beside results.keras
    notes.write_text('{"my": "numbers"}')
    with pytest.raises(OutputError, match=r"results\.json is in the way: it is not the provenance `train` writes"):
        train_model(*splits, out, arch="target", recipe=RECIPE)
    args = ["train", "--arch", "target", "--cifar10", "/nonexistent", "--out", str(out), "-q"]
    assert run_with_friendly_errors(cli, args) == 2  # before the data is read
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --overwrite to replace it" in err
    assert notes.read_text() == '{"my": "numbers"}' and not out.exists() and not Path(f"{out}.ckpt").exists()


def test_bad_output_paths_are_config_errors(splits, tmp_path):
    with pytest.raises(ConfigError, match=r"must end in \.keras"):
        train_model(*splits, tmp_path / "model.h5", arch="target", recipe=RECIPE)
    (tmp_path / "dir.keras").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        train_model(*splits, tmp_path / "dir.keras", arch="target", recipe=RECIPE)
    with pytest.raises(ConfigError, match="--imagenet applies to the source model only"):
        train_from_cifar10("x", tmp_path / "m.keras", arch=Arch.TARGET, imagenet=True)


class Interrupted(Exception):
    pass


def _stop_after_epoch():
    """A callback that saves the state at the end of the first epoch it sees, then raises like a kill."""
    import keras

    class StopAfterEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.weights = [np.array(w) for w in self.model.get_weights()]
            self.iterations = int(self.model.optimizer.iterations.numpy())
            raise Interrupted  # like a kill right after this epoch was saved

    return StopAfterEpoch()


def _recorder():
    """A callback recording the state at train begin (after any restore) and the epochs trained."""
    import keras

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):  # runs after BackupAndRestore restored the state
            self.weights = [np.array(w) for w in self.model.get_weights()]
            self.iterations = int(self.model.optimizer.iterations.numpy())
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(epoch)

        def on_train_end(self, logs=None):
            self.trained_name = self.model.name
            self.final_weights = [np.array(w) for w in self.model.get_weights()]

    return Record()


def test_an_interrupted_run_resumes_from_its_checkpoint(splits, tmp_path):
    out = tmp_path / "resume.keras"
    recipe = RECIPE  # 2 epochs

    stop = _stop_after_epoch()
    with pytest.raises(Interrupted):
        train_model(*splits, out, arch="target", recipe=recipe, seed=3, callbacks=[stop])
    assert not out.exists() and not model_metadata_path(out).exists()
    assert Path(f"{out}.ckpt").is_dir() and _history_epochs(out) == [1]
    assert stop.iterations == 4  # 200 images / 50 per step

    # another run's settings do not silently continue this checkpoint
    with pytest.raises(OutputError, match="checkpoint of a different training run"):
        train_model(*splits, out, arch="target", recipe=recipe, seed=4)

    record = _recorder()
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


def test_cli_train_with_limit_uses_the_seeded_balanced_subset(image_folder_source, tmp_path, capsys):
    """Also: --overwrite replaces an old model and its stale history; without it a rerun is refused."""
    from cifar10_fgs.cli._errors import run_with_friendly_errors
    from cifar10_fgs.cli.main import cli

    root, _ = image_folder_source
    out = tmp_path / "limited.keras"
    out.write_bytes(b"an old model")
    out.with_suffix(".history.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3}\n')
    args = [
        "train",
        "--arch",
        "target",
        "--cifar10",
        str(root),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--train-limit",
        "20",
        "--seed",
        "5",
        "--json",
    ]
    capsys.readouterr()
    assert run_with_friendly_errors(cli, [*args, "--overwrite"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model_path"] == str(out) and out.is_file()
    meta = read_model_metadata(out)
    full = load_cifar10(root, "train")  # an image folder: rows sorted by class
    assert meta["train_data"]["num_images"] == 20 and meta["epochs"] == 1 and meta["seed"] == 5
    assert meta["train_data"]["fingerprint"] == full.balanced(20, seed=5).fingerprint()
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


# --------------------------------------------------------------------------- warm restarts and --init-from


def _lr(recipe, steps_per_epoch: int, steps) -> np.ndarray:
    from cifar10_fgs.training.fitting import lr_schedule

    schedule = lr_schedule(recipe, steps_per_epoch)
    return np.array([float(schedule(s)) for s in steps])


def test_a_warm_restart_starts_a_new_warmup_and_cosine_cycle():
    recipe = dataclasses.replace(TARGET_RECIPE, epochs=10, peak_lr=0.1, warmup_epochs=1.0, restarts=((6, 0.04),))
    assert recipe.cycles() == ((0, 6, 0.1), (6, 10, 0.04))
    lr = _lr(recipe, 10, [0, 10, 59, 60, 70, 99, 100])
    np.testing.assert_allclose(lr[[0, 1]], [0.01, 0.1], rtol=1e-6)  # warm-up from peak/10 to the peak
    assert lr[2] < 1e-3  # the first cycle has annealed to ~0 just before the restart
    np.testing.assert_allclose(lr[[3, 4]], [0.004, 0.04], rtol=1e-6)  # the second cycle: its own warm-up and peak
    assert lr[5] < 1e-3 and lr[6] == 0.0
    # the first cycle of the restarted recipe is exactly the single-cycle recipe of its length
    steps = range(0, 60)
    np.testing.assert_array_equal(_lr(recipe, 10, steps), _lr(recipe.with_epochs(6), 10, steps))
    assert recipe.with_epochs(6).restarts == () and recipe.with_epochs(8).restarts == ((6, 0.04),)


@pytest.mark.parametrize("restarts", [((0, 0.1),), ((10, 0.1),), ((5, 0.1), (3, 0.1)), ((4, 0.1), (4, 0.1))])
def test_restarts_outside_the_schedule_are_config_errors(restarts):
    with pytest.raises(ConfigError, match="restarts .* must be increasing and inside"):
        dataclasses.replace(TARGET_RECIPE, epochs=10, restarts=restarts)


CONTINUED = dataclasses.replace(RECIPE, epochs=4, restarts=((2, 5e-4),))  # RECIPE's 2 epochs, then a second cycle


def test_init_from_continues_the_schedule_from_the_saved_weights(trained, splits, tmp_path):
    init, first = trained  # 2 epochs of RECIPE, 4 steps each
    out = tmp_path / "continued.keras"

    record = _recorder()
    result = train_model(
        *splits, out, arch="target", recipe=CONTINUED, seed=7, init_from=init, start_epoch=2, callbacks=[record]
    )
    assert record.iterations == 8 and record.epochs == [2, 3]  # the schedule continues at epoch 3 (1-based)
    for got, saved in zip(record.weights, load_model(init).get_weights(), strict=True):
        np.testing.assert_array_equal(got, saved)
    meta = read_model_metadata(out)
    assert meta["init_from"]["sha256"] == first.sha256 == hashlib.sha256(init.read_bytes()).hexdigest()
    assert meta["init_from"]["start_epoch"] == 2 and meta["init_from"]["test_accuracy"] == first.test_accuracy
    assert meta["recipe"]["restarts"] == [[2, 5e-4]] and meta["recipe"]["epochs"] == 4
    assert [r["epoch"] for r in meta["history"]] == [1, 2, 3, 4] and result.epochs == 4
    assert meta["history"][:2] == read_model_metadata(init)["history"]  # the continued run's own epochs first


def test_an_interrupted_continuation_resumes_its_own_checkpoint(trained, splits, tmp_path):
    init, _ = trained
    out = tmp_path / "continued.keras"

    stop = _stop_after_epoch()
    with pytest.raises(Interrupted):
        train_model(
            *splits, out, arch="target", recipe=CONTINUED, seed=7, init_from=init, start_epoch=2, callbacks=[stop]
        )
    assert stop.iterations == 12 and _history_epochs(out) == [1, 2, 3]

    record = _recorder()
    train_model(
        *splits, out, arch="target", recipe=CONTINUED, seed=7, init_from=init, start_epoch=2, callbacks=[record]
    )
    assert record.iterations == 12 and record.epochs == [3]
    for restored, saved in zip(record.weights, stop.weights, strict=True):
        np.testing.assert_array_equal(restored, saved)
    assert [r["epoch"] for r in read_model_metadata(out)["history"]] == [1, 2, 3, 4]


def test_bad_init_from_input_is_refused_before_training(trained, splits, tmp_path):
    import keras

    init, _ = trained
    with pytest.raises(ConfigError, match="--start-epoch needs --init-from"):
        train_model(*splits, tmp_path / "a.keras", arch="target", recipe=CONTINUED, start_epoch=2)
    with pytest.raises(ModelError, match="does not exist"):
        train_model(*splits, tmp_path / "a.keras", arch="target", recipe=CONTINUED, init_from=tmp_path / "none.keras")
    with pytest.raises(ConfigError, match=r"--start-epoch 3 is not where a cycle of the recipe begins \(\[0, 2\]\)"):
        train_model(*splits, tmp_path / "a.keras", arch="target", recipe=CONTINUED, init_from=init, start_epoch=3)
    later = dataclasses.replace(CONTINUED, restarts=((3, 5e-4),), epochs=5)
    with pytest.raises(ConfigError, match="--start-epoch 3 but .* was trained for 2 epochs: pass --start-epoch 2"):
        train_model(*splits, tmp_path / "a.keras", arch="target", recipe=later, init_from=init, start_epoch=3)
    with pytest.raises(ConfigError, match="is also --out"):
        train_model(*splits, init, arch="target", recipe=CONTINUED, init_from=init, start_epoch=2, overwrite=True)
    other = tmp_path / "other.keras"
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(other)
    with pytest.raises(ConfigError, match="does not fit this model .* same --arch"):
        train_model(*splits, tmp_path / "a.keras", arch="target", recipe=CONTINUED, init_from=other, start_epoch=2)
    assert list(tmp_path.iterdir()) == [other]  # nothing written: no model, checkpoint or history


def test_recipes_saved_before_restarts_existed_still_match(trained, splits):
    out, _ = trained
    meta = read_model_metadata(out)
    assert "restarts" not in meta["recipe"]  # a single-cycle recipe is saved as it always was
    assert trained_model_matches(out, splits[0], RECIPE, seed=7)
    assert not trained_model_matches(out, splits[0], dataclasses.replace(RECIPE, restarts=((1, 1e-4),), epochs=3), 7)


def test_a_last_cycle_shorter_than_its_warmup_is_refused():
    from cifar10_fgs.recipes import SOURCE_RECIPE

    assert SOURCE_RECIPE.with_epochs(30).restarts == () and SOURCE_RECIPE.with_epochs(32).cycles()[-1] == (30, 32, 0.05)
    with pytest.raises(
        ConfigError, match=r"the last cycle \(30..31\) is no longer than its warm-up .* --epochs 30 or 32\+"
    ):
        SOURCE_RECIPE.with_epochs(31)


def test_cli_start_epoch_without_init_from_is_one_line_exit_2(tmp_path, capsys):
    from cifar10_fgs.cli._errors import run_with_friendly_errors
    from cifar10_fgs.cli.main import cli

    code = run_with_friendly_errors(
        cli,
        [
            "train",
            "--arch",
            "target",
            "--cifar10",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "m.keras"),
            "--start-epoch",
            "3",
        ],
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--start-epoch needs --init-from" in err[0]


FLIPPED = dataclasses.replace(RECIPE, flip_average=True)


def test_a_flip_averaged_model_is_the_mean_of_the_network_on_the_image_and_its_mirror(trained, tmp_path):
    import keras

    from cifar10_fgs.models.inference import predict_logits
    from cifar10_fgs.models.networks import FLIP_AVERAGED, flip_averaged, network_of

    network = load_model(trained[0])
    wrapped = flip_averaged(network)
    images = synthetic_images(16, seed=5)[0]
    mean = (predict_logits(network, images) + predict_logits(network, images[:, :, ::-1].copy())) / 2
    np.testing.assert_allclose(predict_logits(wrapped, images), mean, rtol=0, atol=1e-5)
    assert not np.allclose(predict_logits(network, images), mean, atol=1e-3)  # the mirror changes the logits
    wrapped.save(tmp_path / "w.keras")  # Keras' own layers only: loads in safe mode without this library
    again = keras.saving.load_model(tmp_path / "w.keras", compile=False, safe_mode=True)
    assert again.name == FLIP_AVERAGED and network_of(again).name == network.name and network_of(network) is network
    np.testing.assert_array_equal(predict_logits(again, images), predict_logits(wrapped, images))
    assert len(again.trainable_weights) == len(network.trainable_weights)  # the mirror is fixed
    twice = flip_averaged(again)  # wraps the network once, not the wrapper
    assert network_of(twice).name == network.name
    np.testing.assert_array_equal(predict_logits(twice, images), predict_logits(wrapped, images))
    named = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)], name=FLIP_AVERAGED
    )  # someone else's model of that name is just a model
    assert network_of(named) is named


def test_manifests_and_the_card_name_a_flip_averaged_network(trained):
    from types import SimpleNamespace

    from cifar10_fgs.dataset_card import render
    from cifar10_fgs.models.networks import FLIP_SUFFIX, architecture, flip_averaged

    network = load_model(trained[0])
    assert architecture(network) == "simple_deep_cnn"
    assert architecture(flip_averaged(network)) == "simple_deep_cnn" + FLIP_SUFFIX
    manifest = SimpleNamespace(source_model=SimpleNamespace(architecture="efficientnetb0_cifar10" + FLIP_SUFFIX))
    assert render.architecture_name(manifest, FLIP_SUFFIX) == "EfficientNetB0 (test-time flip averaging)"


def test_flip_average_is_not_part_of_the_checkpoint_key(splits, tmp_path):
    """A run killed under one flip_average setting resumes under the other: the training is the same."""
    out = tmp_path / "m.keras"
    stop = _stop_after_epoch()
    with pytest.raises(Interrupted):
        train_model(*splits, out, arch="target", recipe=RECIPE, seed=7, callbacks=[stop])
    record = _recorder()
    train_model(*splits, out, arch="target", recipe=FLIPPED, seed=7, callbacks=[record])
    assert record.epochs == [1]  # resumed after epoch 1, not restarted
    for restored, saved in zip(record.weights, stop.weights, strict=True):
        np.testing.assert_array_equal(restored, saved)
    assert read_model_metadata(out)["architecture"] == "simple_deep_cnn+flip_average"


def test_flip_average_trains_the_same_network_and_saves_it_wrapped(trained, splits, tmp_path):
    from cifar10_fgs.models.networks import FLIP_AVERAGED, network_of

    out = tmp_path / "flipped.keras"
    record = _recorder()
    result = train_model(*splits, out, arch="target", recipe=FLIPPED, seed=7, callbacks=[record])
    model = load_model(out)
    assert record.trained_name == load_model(trained[0]).name and record.epochs == [0, 1]  # the plain network trains
    assert model.name == FLIP_AVERAGED
    network = network_of(model)
    for got, want in zip(network.get_weights(), record.final_weights, strict=True):
        np.testing.assert_array_equal(got, want)  # ... and is saved inside the wrapper as trained
    meta = read_model_metadata(out)
    assert meta["recipe"]["flip_average"] is True and "flip_average" not in read_model_metadata(trained[0])["recipe"]
    train, test = splits
    assert (result.test_accuracy, result.test_loss) == evaluate_model(model, test.images, test.labels)
    assert meta["network"] == {
        "name": network.name,  # the network alone, recorded beside the wrapper's scores
        "test_accuracy": evaluate_model(network, test.images, test.labels)[0],
        "train_accuracy": evaluate_model(network, train.images, train.labels)[0],
    }


def test_init_from_at_the_recipes_end_trains_nothing_and_saves_the_model_as_the_recipe_does(trained, splits, tmp_path):
    from cifar10_fgs.models.networks import FLIP_AVERAGED, network_of

    init, first = trained
    out = tmp_path / "finished.keras"
    record = _recorder()
    train_model(*splits, out, arch="target", recipe=FLIPPED, seed=7, init_from=init, start_epoch=2, callbacks=[record])
    assert record.epochs == [] and record.iterations == 8  # nothing trained
    model = load_model(out)
    assert model.name == FLIP_AVERAGED
    for got, want in zip(network_of(model).get_weights(), load_model(init).get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    meta = read_model_metadata(out)
    assert meta["init_from"]["sha256"] == first.sha256 and meta["history"] == read_model_metadata(init)["history"]

    cont = tmp_path / "continued.keras"  # a flip-averaged model continues as its network
    record = _recorder()
    train_model(
        *splits,
        cont,
        arch="target",
        recipe=dataclasses.replace(CONTINUED, flip_average=True),
        seed=7,
        init_from=out,
        start_epoch=2,
        callbacks=[record],
    )
    assert record.epochs == [2, 3]
    for got, want in zip(record.weights, load_model(init).get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_flip_averaged_source_is_attacked_validated_and_named_in_the_card(trained, splits, tmp_path):
    from cifar10_fgs.config import AttackConfig
    from cifar10_fgs.dataset import manifest as mf
    from cifar10_fgs.generate.core import GenerateOptions, generate_dataset
    from cifar10_fgs.models.networks import flip_averaged
    from cifar10_fgs.publish.card import write_card
    from cifar10_fgs.validate import validate_dataset

    from helpers import labels_the_model_gets_right, tiny_model

    wrapped = flip_averaged(tiny_model(seed=3))  # the attack differentiates through both views
    wrapped.save(tmp_path / "tiny.keras")
    images = synthetic_images(24, seed=9)[0]
    labels = labels_the_model_gets_right(wrapped, images, wrong=4)
    data = {s: Cifar10Split(images, labels, origin="synthetic", split=s) for s in ("train", "test")}
    gen = generate_dataset(
        tmp_path / "tiny",
        tmp_path / "tiny.keras",
        GenerateOptions(cifar10="synthetic", attack=AttackConfig(batch_size=16)),
        data=data,
    )
    for summary in gen.summary.values():
        assert summary.fooled_percent == 100.0 and summary.phases["unchanged"] == 4 and summary.num_rows == 24
    assert validate_dataset(tmp_path / "tiny", tmp_path / "tiny.keras").ok  # re-decoded: all misclassified

    init, _ = trained  # a flip-averaged model from `train`: its manifest and card name it and its network
    model = tmp_path / "flipped.keras"
    train_model(*splits, model, arch="target", recipe=FLIPPED, seed=7, init_from=init, start_epoch=2)
    ds = tmp_path / "ds"
    generate_dataset(
        ds,
        model,
        GenerateOptions(cifar10="synthetic", attack=AttackConfig(batch_size=32, max_iterations=3), limit=20),
        data=dict(zip(("train", "test"), splits)),
        allow_failures=True,
    )
    source, network = mf.read(ds).source_model, read_model_metadata(model)["network"]
    assert source.architecture == "simple_deep_cnn+flip_average" and source.network == network
    write_card(ds, "someone/adv-cifar10")
    card = (ds / "README.md").read_text()
    assert "simple deep CNN (Keras example, the paper's Fig. 2) (test-time flip averaging)" in card
    assert (
        f"| the network alone (no flip averaging) | test accuracy {network['test_accuracy']:.4f}, "
        f"train split {network['train_accuracy']:.4f} |"
    ) in card


def test_cli_train_at_the_recipes_end_says_it_trained_nothing(trained, image_folder_source, tmp_path, capsys):
    from cifar10_fgs.cli._errors import run_with_friendly_errors
    from cifar10_fgs.cli.main import cli

    root, _ = image_folder_source
    out = tmp_path / "resaved.keras"
    capsys.readouterr()
    code = run_with_friendly_errors(
        cli,
        [
            "train",
            "--arch",
            "target",
            "--cifar10",
            str(root),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--init-from",
            str(trained[0]),
            "--start-epoch",
            "2",
            "-q",
        ],
    )
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 0 and line.startswith(f"saved {out}: test accuracy ")
    assert line.endswith("(2 epochs; 0 s of training in this run)")
    for got, want in zip(load_model(out).get_weights(), load_model(trained[0]).get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
