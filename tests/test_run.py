"""`run`: the whole pipeline on tiny models and synthetic images; resumes without redoing finished stages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cifar10_fgs.config import AttackConfig
from cifar10_fgs.pipeline import RunOptions, run_pipeline


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


def test_run_reruns_a_stage_whose_input_changed(options, tmp_path):
    import dataclasses

    from helpers import tiny_model

    out = tmp_path / "ws"
    run_pipeline(out, options)
    other = tmp_path / "other-target.keras"
    tiny_model(seed=21, hidden=4).save(other)
    again = run_pipeline(out, dataclasses.replace(options, target_model=str(other)))
    st = statuses(again)
    assert st["generate"] == st["validate"] == "skipped"
    assert st["transfer"] == st["retrain"] == st["gaussian"] == "done"


def test_source_epochs_that_cut_a_cycle_to_its_warmup_fail_before_any_work(tmp_path):
    from cifar10_fgs.errors import ConfigError

    out = tmp_path / "ws"
    with pytest.raises(ConfigError, match=r"the last cycle \(30..31\) is no longer than its warm-up"):
        run_pipeline(out, RunOptions(cifar10=str(tmp_path / "unread"), source_epochs=31))
    assert not out.exists()


def test_quick_gives_its_limits_and_recipes_where_none_are_given():
    from cifar10_fgs.config import QUICK_SOURCE_RECIPE, QUICK_TARGET_RECIPE, SOURCE_RECIPE, Arch, QuickTrial
    from cifar10_fgs.pipeline import _recipe, quick_options

    quick = quick_options(RunOptions(quick=True))
    assert (quick.limit, quick.train_limit, quick.retrain_epochs) == (
        QuickTrial().limit,
        QuickTrial().train_limit,
        QuickTrial().retrain_epochs,
    )
    given = quick_options(RunOptions(quick=True, limit=30, train_limit=40, retrain_epochs=3))
    assert (given.limit, given.train_limit, given.retrain_epochs) == (30, 40, 3)
    assert quick_options(RunOptions()) == RunOptions()  # no --quick: nothing changes
    assert _recipe(Arch.SOURCE, None, quick=True) == QUICK_SOURCE_RECIPE != SOURCE_RECIPE
    assert _recipe(Arch.TARGET, None, quick=True) == QUICK_TARGET_RECIPE
    assert _recipe(Arch.SOURCE, 2, quick=True).epochs == 2  # --source-epochs still wins
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


@pytest.mark.parametrize("flag", ["--private", "--no-source-model"])
def test_an_upload_option_without_upload_is_one_line_and_writes_nothing(tmp_path, capsys, flag):
    from cifar10_fgs.cli._errors import run_with_friendly_errors
    from cifar10_fgs.cli.main import cli

    assert run_with_friendly_errors(cli, ["run", "--out", str(tmp_path / "ws"), flag]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{flag} applies to an upload" in err
    assert not (tmp_path / "ws").exists()
