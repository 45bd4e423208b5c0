"""A Keras model in keras.io's convention (x / 255 in, softmax out) as a scored model: transfer, gaussian, leaderboard.

Declared by its sidecar or the options, it must score exactly what its twin in this project's convention
([0, 255] in, logits out, the same weights) scores.
"""

from __future__ import annotations

import json
import shutil

import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.evaluate import GaussianOptions, TransferOptions, evaluate_gaussian, evaluate_transfer
from cifar10_fgs.models.convention import SIDECAR

from helpers import logits_twin, softmax_model


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(softmax model with its sidecar, the same model without one, its logits twin), as .keras paths."""
    d = tmp_path_factory.mktemp("pair")
    model = softmax_model(seed=7)
    (d / "declared").mkdir()
    model.save(d / "declared" / "softmax.keras")
    (d / "declared" / SIDECAR).write_text(json.dumps({"scale": 1, "output": "probabilities"}))
    (d / "bare").mkdir()
    shutil.copy(d / "declared" / "softmax.keras", d / "bare" / "softmax.keras")
    logits_twin(model).save(d / "twin.keras")
    return d / "declared" / "softmax.keras", d / "bare" / "softmax.keras", d / "twin.keras"


def test_transfer_scores_a_softmax_model_as_its_logits_twin(folder, pair):
    declared, _, twin = pair
    a = evaluate_transfer(folder, declared, TransferOptions(name="softmax"))
    b = evaluate_transfer(folder, twin, TransferOptions(name="twin"))
    assert (a.original.accuracy, a.adversarial.accuracy, a.control.accuracy) == (
        b.original.accuracy,
        b.adversarial.accuracy,
        b.control.accuracy,
    )
    assert abs(a.original.loss - b.original.loss) < 1e-4  # the cross-entropy of the same probabilities
    target = a.report["models"]["target"]["input_convention"]
    assert (
        target["scale"] == 1.0
        and target["output"] == "probabilities"
        and target["declared_by"]["scale"].endswith(SIDECAR)
    )


def test_gaussian_scores_it_as_its_twin(folder, pair):
    declared, _, twin = pair
    r = evaluate_gaussian(folder, [declared, twin], GaussianOptions(name="g", stds=(0.0, 1.0)))
    (a, b) = r.models
    for std in (0.0, 1.0):
        for s in ("original", "adversarial"):
            assert r.accuracy(a, s, std, "spatial-uint8") == r.accuracy(b, s, std, "spatial-uint8")


def test_the_options_declare_it_for_the_leaderboard(folder, pair, tmp_path, capsys):
    _, bare, twin = pair
    out = tmp_path / "board"
    declared = ["--input-scale", "1", "--model-output", "probabilities"]
    args = ["evaluate", "transfer", str(folder), "--model", str(bare), "--leaderboard", "--out", str(out), "-q"]
    assert run_with_friendly_errors(cli, [*args, *declared]) == 0
    (entry,) = json.loads((out / "leaderboard.json").read_text())["models"]
    twin_result = evaluate_transfer(folder, twin, TransferOptions(name="twin_board"))
    assert (entry["clean_acc"], entry["adversarial_acc"]) == (
        twin_result.original.accuracy,
        twin_result.adversarial.accuracy,
    )
    assert entry["input_convention"]["declared_by"]["output"] == "the command line"
    # undeclared, the same file is fed [0, 255] and its probabilities taken for logits: another score
    assert run_with_friendly_errors(cli, [*args, "--name", "undeclared"]) == 0
    (undeclared,) = json.loads((out / "undeclared.json").read_text())["models"]
    assert undeclared["input_convention"]["scale"] == 255.0
