"""Each entry point takes its dataset folder, then its models, then one frozen options dataclass (issues 19 and 26)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from cifar10_fgs.data import DEFAULT_CIFAR10
from cifar10_fgs.evaluate import (
    EvaluateOptions,
    GaussianOptions,
    RetrainOptions,
    TransferOptions,
    evaluate_gaussian,
    evaluate_retrain,
    evaluate_transfer,
)
from cifar10_fgs.evaluate.leaderboard import LeaderboardOptions, evaluate_leaderboard
from cifar10_fgs.generate.core import GenerateOptions, generate_dataset

EVALUATIONS = [
    (evaluate_transfer, TransferOptions, ["dataset_dir", "target_model", "options"], "transfer"),
    (evaluate_retrain, RetrainOptions, ["dataset_dir", "retrained_model", "options"], None),
    (evaluate_gaussian, GaussianOptions, ["dataset_dir", "models", "options"], "gaussian"),
    (evaluate_leaderboard, LeaderboardOptions, ["dataset_dir", "models", "options"], "leaderboard"),
]


@pytest.mark.parametrize("function, options, parameters, name", EVALUATIONS, ids=lambda x: getattr(x, "__name__", ""))
def test_an_evaluation_takes_one_frozen_options_dataclass(function, options, parameters, name):
    sig = inspect.signature(function)
    assert list(sig.parameters) == parameters
    assert sig.parameters["options"].default == options()
    assert issubclass(options, EvaluateOptions) and options().name == name
    with pytest.raises(dataclasses.FrozenInstanceError):
        options().batch_size = 1
    shared = {f.name for f in dataclasses.fields(EvaluateOptions)}
    assert shared <= {f.name for f in dataclasses.fields(options)}


def test_generate_takes_the_dataset_folder_the_source_model_and_its_options():
    sig = inspect.signature(generate_dataset)
    positional = [p.name for p in sig.parameters.values() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert positional == ["dataset_dir", "source_model", "options"]
    assert sig.parameters["options"].default == GenerateOptions()
    assert GenerateOptions().cifar10 == DEFAULT_CIFAR10 and GenerateOptions().attack is None


def test_options_reject_an_unknown_field():
    with pytest.raises(TypeError):
        TransferOptions(source="cifar-10-python.tar.gz")  # the CIFAR-10 is `cifar10`, the attacked model `source_model`
    assert TransferOptions(cifar10="x", source_model="m.keras").source_model == "m.keras"


def test_retrain_refuses_an_input_convention_it_would_ignore(tmp_path):
    from cifar10_fgs.errors import ConfigError
    from cifar10_fgs.models.convention import COMMAND_LINE, parse_declared

    declared = parse_declared(
        {"layout": "nchw", "scale": None, "mean": None, "std": None, "output": None}, COMMAND_LINE
    )
    with pytest.raises(ConfigError, match="model_input would be ignored: evaluate retrain trains and scores"):
        evaluate_retrain(tmp_path / "no-dataset", tmp_path / "r.keras", RetrainOptions(model_input=declared))
