"""Each attack method takes its own settings: the one-pixel baseline's are one setting carried by the options and
recorded in generation.json, and a setting the chosen method would ignore is refused before any work."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.config import AttackConfig, Method, OnePixelConfig
from cifar10_fgs.errors import ConfigError
from cifar10_fgs.evaluate import TransferOptions
from cifar10_fgs.generate.core import GenerateOptions, check_options, generate_dataset
from cifar10_fgs.pipeline import RunOptions
from cifar10_fgs.recipes import TARGET_RECIPE

from helpers import generate_cli

SMALL = OnePixelConfig(population=5, max_generations=2, seed=3, batch_size=16)  # seconds for a few images


def test_onepixel_runs_with_the_settings_it_is_given_and_records_them(tiny_keras_path, image_folder_source, tmp_path):
    root, _ = image_folder_source
    out = tmp_path / "ds"
    options = GenerateOptions(cifar10=root, splits=("test",), limit=10, method=Method.ONEPIXEL, onepixel=SMALL)
    result = generate_dataset(out, tiny_keras_path, options, allow_failures=True)
    manifest = json.loads((out / "generation.json").read_text())
    assert manifest["config"]["method"] == "onepixel"
    assert manifest["config"]["onepixel"] == dataclasses.asdict(SMALL)
    attacked = [s for s in result.summary.values() if s.num_images]
    assert attacked and max(s.mean_iterations or 0 for s in attacked) <= SMALL.max_generations


def test_cli_onepixel_takes_population_generations_and_batch_size(tiny_keras_path, image_folder_source, tmp_path):
    root, _ = image_folder_source
    out = tmp_path / "ds"
    args = generate_cli(tiny_keras_path, root, out, "--split", "test", "--limit", "10", "--method", "onepixel")
    args += ["--population", "5", "--max-generations", "2", "--batch-size", "16", "--allow-failures"]
    assert run_with_friendly_errors(cli, args) == 0
    recorded = json.loads((out / "generation.json").read_text())["config"]["onepixel"]
    assert recorded == {"population": 5, "max_generations": 2, "seed": 0, "batch_size": 16}


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--method", "onepixel", "--step", "0.02"], "--step applies to --method fgs only"),
        (["--method", "onepixel", "--max-iterations", "50"], "--max-iterations applies to --method fgs only"),
        (["--method", "onepixel", "--max-linf", "0.03"], "--max-linf applies to --method fgs only"),
        (["--method", "onepixel", "--no-escalate"], "--escalate/--no-escalate applies to --method fgs only"),
        (["--method", "onepixel", "--escalate"], "--escalate/--no-escalate applies to --method fgs only"),
        (["--population", "50"], "--population applies to --method onepixel only"),
        (["--max-generations", "5"], "--max-generations applies to --method onepixel only"),
    ],
)
def test_cli_an_option_the_method_would_ignore_is_one_line_before_any_work(
    flags, words, tiny_keras_path, image_folder_source, tmp_path, capsys
):
    root, _ = image_folder_source
    out = tmp_path / "ds"
    assert run_with_friendly_errors(cli, generate_cli(tiny_keras_path, root, out, "--limit", "10", *flags)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err
    assert not out.exists()


@pytest.mark.parametrize(
    "options, words",
    [
        (GenerateOptions(attack=AttackConfig(step=0.02), limit=10, method=Method.ONEPIXEL), "do not apply to --method"),
        (GenerateOptions(attack=AttackConfig(batch_size=7), limit=10, method=Method.ONEPIXEL), "do not apply"),
        (GenerateOptions(onepixel=OnePixelConfig(population=50)), "apply to --method onepixel"),
        (GenerateOptions(seed=4), "seeds the --limit subset, and there is no limit"),
    ],
)
def test_library_settings_the_method_would_ignore_are_refused_before_any_work(
    options, words, tiny_keras_path, image_folder_source, tmp_path
):
    root, _ = image_folder_source
    out = tmp_path / "ds"
    with pytest.raises(ConfigError, match=words):
        generate_dataset(out, tiny_keras_path, dataclasses.replace(options, cifar10=root))
    assert not out.exists()
    for default in (None, AttackConfig()):  # the defaults pass
        check_options(GenerateOptions(attack=default, limit=10, method=Method.ONEPIXEL, onepixel=SMALL))


@pytest.mark.parametrize(
    "make",
    [
        lambda: AttackConfig(escalate="False"),
        lambda: check_options(GenerateOptions(with_originals="no")),
        lambda: dataclasses.replace(TARGET_RECIPE, augment="False"),
        lambda: RunOptions(quick="False"),
        lambda: TransferOptions(overwrite="False"),
    ],
    ids=["attack", "generate", "recipe", "run", "evaluate"],
)
def test_a_flag_that_is_not_a_bool_is_refused_not_read_as_true(make):
    with pytest.raises(ConfigError, match=r"is not True or False: pass a bool"):
        make()
