"""`run`: the whole pipeline on tiny models and synthetic images; resumes without redoing finished stages."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cifar10_fgs.config import AttackConfig
from cifar10_fgs.pipeline import RunOptions, run_pipeline
from cifar10_fgs.recipes import SOURCE_RECIPE, TARGET_RECIPE, Arch


@pytest.fixture()
def options(tiny_keras_path, image_folder_source, tmp_path):
    import keras

    from helpers import tiny_model

    root, _ = image_folder_source
    target = tmp_path / "target.keras"
    tiny_model(seed=9, hidden=4).save(target)
    keras.backend.clear_session()
    return RunOptions(
        cifar10=str(root),
        source_model=str(tiny_keras_path),
        target_model=str(target),
        retrain_epochs=1,
        attack=AttackConfig(batch_size=32),
    )


def statuses(result) -> dict[str, str]:
    return {s.stage: s.status for s in result.stages}


def test_run_end_to_end_then_everything_is_skipped(options, tmp_path):
    import datasets

    out = tmp_path / "ws"
    first = run_pipeline(out, options)
    st = statuses(first)
    assert st["generate"] == st["validate"] == st["transfer"] == st["retrain"] == st["gaussian"] == "done"
    ds = out / "dataset"
    assert (ds / "README.md").exists() and (out / "models" / "retrained.keras").exists()
    for name in ("transfer", "retrain", "gaussian"):
        assert (ds / "results" / f"{name}.json").exists()
    loaded = datasets.load_dataset(str(ds))
    assert loaded["train"].num_rows == 60 and loaded["test"].num_rows == 40
    record = json.loads((out / "run.json").read_text())
    assert record["stages"]["transfer"]["numbers"]["original"] >= 0
    # both retraining modes, every Gaussian variant, and the paper comparison linked from the card
    assert st["retrain_mixed"] == "done" and (out / "models" / "retrained_mixed.keras").exists()
    gaussian = json.loads((ds / "results" / "gaussian.json").read_text())
    assert gaussian["settings"]["variants"] == ["spatial-uint8", "spatial-float", "paper-scalar-float"]
    assert gaussian["settings"]["models"] == ["target", "retrained", "retrained_mixed"]
    paper = json.loads((ds / "results" / "paper.json").read_text())
    assert {e["label"] for e in paper["effects"] if e["key"] == "trend_filter_never_helps_retrained"} == {
        f"{v} / {m}" for v in gaussian["settings"]["variants"] for m in ("adversarial", "mixed")
    }
    assert "results/paper.md" in (ds / "README.md").read_text()

    second = run_pipeline(out, options)
    st = statuses(second)
    assert all(st[s] == "skipped" for s in ("generate", "validate", "transfer", "retrain", "gaussian")), st


def test_run_killed_inside_a_stage_resumes_without_redoing_finished_ones(options, tmp_path, monkeypatch):
    import cifar10_fgs.pipeline as ev  # the stage calls evaluate_retrain by the name the pipeline imported

    out = tmp_path / "ws"
    real = ev.evaluate_retrain

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "evaluate_retrain", killed)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(out, options)
    manifest_before = (out / "dataset" / "generation.json").read_bytes()
    monkeypatch.setattr(ev, "evaluate_retrain", real)
    resumed = run_pipeline(out, options)
    st = statuses(resumed)
    assert st["generate"] == st["validate"] == st["transfer"] == "skipped", st
    assert st["retrain"] == "done" and st["gaussian"] == "done"
    assert (out / "dataset" / "generation.json").read_bytes() == manifest_before


def test_run_reruns_a_stage_whose_input_changed_only_with_overwrite(options, tmp_path):
    from cifar10_fgs.errors import ExistingOutputError

    from helpers import tiny_model

    out = tmp_path / "ws"
    run_pipeline(out, options)
    other = tmp_path / "other-target.keras"
    tiny_model(seed=21, hidden=4).save(other)
    changed = dataclasses.replace(options, target_model=str(other))
    transfer = out / "dataset" / "results" / "transfer.json"
    before = transfer.read_bytes()
    with pytest.raises(
        ExistingOutputError, match=r"transfer\.json holds results .* --overwrite .* or choose another --out$"
    ):
        run_pipeline(out, changed)  # the results of the first target are not replaced without asking
    assert transfer.read_bytes() == before
    again = run_pipeline(out, changed, overwrite=True)
    st = statuses(again)
    assert st["generate"] == st["validate"] == "skipped"
    assert st["transfer"] == st["retrain"] == st["gaussian"] == "done"
    assert transfer.read_bytes() != before


TINY_RECIPE = dataclasses.replace(TARGET_RECIPE, epochs=1, batch_size=50)  # trains in seconds


@pytest.fixture()
def tiny_quick_recipes(monkeypatch):
    """The quick trial's recipes cut to one epoch of the small CNN, so a run trains its models in seconds."""
    import cifar10_fgs.run_setup as run_setup

    monkeypatch.setattr(run_setup, "QUICK_RECIPES", {Arch.SOURCE: TINY_RECIPE, Arch.TARGET: TINY_RECIPE})


@pytest.mark.parametrize("provenance", ["none", "the full recipe's"])
def test_a_model_run_did_not_make_survives_run_quick_and_is_replaced_only_with_overwrite(
    options, tiny_quick_recipes, tmp_path, monkeypatch, capsys, provenance
):
    import cifar10_fgs.pipeline as pipeline
    from cifar10_fgs.cli._errors import run_with_friendly_errors
    from cifar10_fgs.cli.main import cli
    from cifar10_fgs.provenance import sha256_file

    from helpers import tiny_model

    ws = tmp_path / "ws"
    foreign = ws / "models" / "source.keras"
    foreign.parent.mkdir(parents=True)
    tiny_model(seed=5, hidden=6).save(foreign)  # a real Keras model of the user's
    if provenance != "none":  # or the 4-hour source, with the provenance `train` writes beside it
        meta = {"arch": "source", "recipe": SOURCE_RECIPE.to_json(), "seed": 0, "sha256": sha256_file(foreign)}
        foreign.with_suffix(".json").write_text(json.dumps(meta))
    before = {p.name: p.read_bytes() for p in foreign.parent.iterdir()}
    args = ["run", "--quick", "--cifar10", options.cifar10, "--out", str(ws), "--target-model", options.target_model]
    args += ["--limit", "20", "--batch-size", "32", "-q"]

    assert run_with_friendly_errors(cli, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{foreign} was not trained by `run` with these data, recipe and seed" in err
    assert "pass --overwrite" in err and f"--source-model {foreign}" in err and "another --out" in err
    assert {p.name: p.read_bytes() for p in foreign.parent.iterdir()} == before  # nothing replaced, no checkpoint
    assert not (ws / "dataset").exists()  # stopped before any training or attack

    def attack_starts(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "generate_dataset", attack_starts)  # the model is what this test is about
    assert run_with_friendly_errors(cli, [*args, "--overwrite"]) == 130
    assert foreign.read_bytes() != before["source.keras"]
    meta = json.loads(foreign.with_suffix(".json").read_text())
    assert meta["recipe"] == TINY_RECIPE.to_json() and meta["sha256"] == sha256_file(foreign)
    assert json.loads((ws / "run.json").read_text())["stages"]["train_source"]["key"] == meta["sha256"]


def test_run_refuses_a_dataset_of_other_settings_before_it_trains(options, tiny_quick_recipes, tmp_path):
    from cifar10_fgs.errors import ExistingOutputError
    from cifar10_fgs.generate.core import GenerateOptions, generate_dataset

    ws = tmp_path / "ws"
    dataset = ws / "dataset"
    generate_dataset(
        dataset, options.source_model, GenerateOptions(cifar10=options.cifar10, attack=options.attack, limit=20)
    )
    manifest = (dataset / "generation.json").read_bytes()
    quick = dataclasses.replace(options, target_model=None, quick=True, limit=30)  # another --limit
    with pytest.raises(ExistingOutputError, match=r"dataset was generated with other settings .*--overwrite"):
        run_pipeline(ws, quick)
    assert not (ws / "models").exists()  # the target was not trained for a dataset that could not be written
    assert (dataset / "generation.json").read_bytes() == manifest


def test_a_given_model_that_is_not_a_file_is_refused_before_any_work(options, tmp_path):
    from cifar10_fgs.errors import ModelError

    ws = tmp_path / "ws"
    missing = dataclasses.replace(options, target_model=str(tmp_path / "typo.keras"))
    with pytest.raises(ModelError, match=r"--target-model .*typo\.keras is not a file"):
        run_pipeline(ws, missing)  # not found only at the transfer stage, after the attack
    assert not ws.exists()


def test_a_run_json_run_did_not_write_is_kept(tmp_path):
    from cifar10_fgs.errors import ExistingOutputError

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "run.json").write_text('{"my": "notes"}')
    with pytest.raises(ExistingOutputError, match=r"run\.json is not the record `cifar10-fgs run` keeps"):
        run_pipeline(ws, RunOptions(cifar10=str(tmp_path / "unread")))
    assert (ws / "run.json").read_text() == '{"my": "notes"}'


@pytest.mark.parametrize(
    "given, words",
    [
        ({"private": True}, "--private applies to an upload: add --upload USER/NAME"),
        ({"ship_source_model": False}, "--no-source-model applies to an upload"),
        (
            {"source_model": "s.keras", "source_epochs": 3},
            "--source-epochs trains the source model, but --source-model",
        ),
        (
            {"target_model": "t.keras", "target_epochs": 3},
            "--target-epochs trains the target model, but --target-model",
        ),
        ({"source_model": "s.keras", "target_model": "t.keras", "train_limit": 9}, "--train-limit limits the training"),
    ],
)
def test_run_options_that_would_be_ignored_are_refused_by_the_library(given, words):
    from cifar10_fgs.errors import ConfigError

    with pytest.raises(ConfigError, match=words):
        RunOptions(**given)
    both = RunOptions(source_model="s.keras", target_model="t.keras", quick=True)
    assert both.train_limit is None  # --quick gives no train limit when no model is trained


def test_source_epochs_that_cut_a_cycle_to_its_warmup_fail_before_any_work(tmp_path):
    from cifar10_fgs.errors import ConfigError

    out = tmp_path / "ws"
    with pytest.raises(ConfigError, match=r"the last cycle \(30..31\) is no longer than its warm-up"):
        run_pipeline(out, RunOptions(cifar10=str(tmp_path / "unread"), source_epochs=31))
    assert not out.exists()


def test_quick_gives_its_limits_and_recipes_where_none_are_given():
    from cifar10_fgs.recipes import QUICK_SOURCE_RECIPE, QUICK_TARGET_RECIPE, SOURCE_RECIPE, Arch, QuickTrial
    from cifar10_fgs.run_setup import quick_options, recipe_of

    quick = quick_options(RunOptions(quick=True))
    assert (quick.limit, quick.train_limit, quick.retrain_epochs) == (
        QuickTrial().limit,
        QuickTrial().train_limit,
        QuickTrial().retrain_epochs,
    )
    given = quick_options(RunOptions(quick=True, limit=30, train_limit=40, retrain_epochs=3))
    assert (given.limit, given.train_limit, given.retrain_epochs) == (30, 40, 3)
    assert quick_options(RunOptions()) == RunOptions()  # no --quick: nothing changes
    assert recipe_of(Arch.SOURCE, None, quick=True) == QUICK_SOURCE_RECIPE != SOURCE_RECIPE
    assert recipe_of(Arch.TARGET, None, quick=True) == QUICK_TARGET_RECIPE
    assert recipe_of(Arch.SOURCE, 2, quick=True).epochs == 2  # --source-epochs still wins
    assert QuickTrial().limit % 10 == 0 and QuickTrial().train_limit % 10 == 0  # N/10 per class exactly


def test_cli_run_quick_attacks_a_balanced_subset_of_a_class_sorted_folder(options, tmp_path, capsys):
    from cifar10_fgs.cli._errors import run_with_friendly_errors
    from cifar10_fgs.cli.main import cli
    from cifar10_fgs.data import load_cifar10

    out = tmp_path / "ws"
    args = ["run", "--quick", "--cifar10", options.cifar10, "--out", str(out)]
    args += ["--source-model", options.source_model, "--target-model", options.target_model]
    args += ["--limit", "20", "--retrain-epochs", "1", "--batch-size", "32", "--json"]
    assert run_with_friendly_errors(cli, args) == 0, capsys.readouterr().err
    manifest = json.loads((out / "dataset" / "generation.json").read_text())
    for split in ("train", "test"):
        full = load_cifar10(options.cifar10, split)  # an image folder: sorted by class
        subset = manifest["config"]["splits"][split]["subset"]
        assert (subset["limit"], subset["seed"]) == (20, 0)
        rows = np.asarray(subset["original_rows"])
        present = np.unique(full.labels)
        assert set(full.labels[rows].tolist()) == set(present.tolist())  # every class the split has
        assert set(full.labels[:20].tolist()) < set(present.tolist())  # which the first 20 rows are not
    assert manifest["summary"]["test"]["failures"] == [] and manifest["summary"]["train"]["failures"] == []


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--private"], "--private applies to an upload"),
        (["--no-source-model"], "--no-source-model applies to an upload"),
        (["--source-model", "s.keras", "--source-epochs", "2"], "--source-epochs trains the source model"),
    ],
)
def test_an_option_run_would_ignore_is_one_line_and_writes_nothing(tmp_path, capsys, flags, words):
    from cifar10_fgs.cli._errors import run_with_friendly_errors
    from cifar10_fgs.cli.main import cli

    assert run_with_friendly_errors(cli, ["run", "--out", str(tmp_path / "ws"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err
    assert not (tmp_path / "ws").exists()
