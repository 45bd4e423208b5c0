"""One CLI convention for every command: help with examples, the shared output options, the same names.

Walks the real click group: every command and subcommand, its --help, its parameters, and the
one-line usage errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from cifar10_fgs.cli._cli_utils import Output
from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.config import GaussianVariant, Method, RetrainMode
from cifar10_fgs.recipes import Arch

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
READS_A_DATASET = (
    "validate",
    "card",
    "upload",
    "evaluate transfer",
    "evaluate retrain",
    "evaluate gaussian",
    "evaluate paper",
)
TAKES_CIFAR10 = (
    "train",
    "generate",
    "validate",
    "card",
    "run",
    "evaluate transfer",
    "evaluate retrain",
    "evaluate gaussian",
)
TAKES_SOURCE_MODEL = ("generate", "validate", "upload", "run", "evaluate transfer")
SCORES_MODELS = ("evaluate transfer", "evaluate gaussian")


def walk(group: click.Group, path: tuple[str, ...] = ()):
    """(path, command) for the group itself and every command below it."""
    yield path, group
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from walk(cmd, (*path, name))
        else:
            yield (*path, name), cmd


COMMANDS = dict(walk(cli))
LEAVES = {" ".join(p): c for p, c in COMMANDS.items() if not isinstance(c, click.Group)}


def option(cmd: click.Command, flag: str) -> click.Option | None:
    return next((p for p in cmd.params if isinstance(p, click.Option) and flag in p.opts), None)


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "cifar10-fgs")
def test_every_help_ends_with_examples_of_that_command(path, capsys):
    code = run_with_friendly_errors(cli, [*path, "--help"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Examples:" in out
    examples = [line.strip() for line in out.split("Examples:")[-1].splitlines() if line.strip()]
    assert 1 <= len(examples) <= 2, examples
    prefix = " ".join(("cifar10-fgs", *path))
    assert all(e.startswith(prefix) for e in examples), examples
    if path and path != ("evaluate",):  # a command's own examples name no option it lacks
        cmd = COMMANDS[path]
        flags = {o for p in cmd.params for o in getattr(p, "opts", ())}
        used = {w for e in examples for w in e.split() if w.startswith("-")}
        assert used <= flags, used - flags


@pytest.mark.parametrize("name", list(LEAVES))
def test_every_command_has_the_shared_output_options_once(name):
    cmd = LEAVES[name]
    for flag, dest in (("--json", "as_json"), ("-q", "quiet"), ("-v", "verbose")):
        opt = option(cmd, flag)
        assert opt is not None and opt.name == dest and opt.is_flag, (name, flag)
    names = [p.name for p in cmd.params]
    assert len(names) == len(set(names)), names


def test_the_names_are_the_same_in_every_command():
    for name, cmd in LEAVES.items():
        first = cmd.params[0]
        if name in READS_A_DATASET:  # the dataset folder: always the first argument
            assert isinstance(first, click.Argument) and first.name == "dataset_dir", name
        assert (option(cmd, "--cifar10") is not None) == (name in TAKES_CIFAR10), name
        assert (option(cmd, "--source-model") is not None) == (name in TAKES_SOURCE_MODEL), name
        model = option(cmd, "--model")
        assert (model is not None) == (name in SCORES_MODELS), name
        if model is not None:
            assert model.multiple, f"{name}: --model is repeatable, never a comma list"
    assert option(LEAVES["train"], "--train-limit") is not None


def test_choice_lists_come_from_the_enums():
    def choices(name, flag):
        return list(option(LEAVES[name], flag).type.choices)

    assert choices("train", "--arch") == [a.value for a in Arch]
    assert choices("generate", "--method") == [m.value for m in Method]
    assert choices("evaluate retrain", "--mode") == [m.value for m in RetrainMode]
    assert choices("run", "--retrain-mode") == [*(m.value for m in RetrainMode), "both"]
    assert choices("evaluate gaussian", "--variant") == [*(v.value for v in GaussianVariant), "all"]


def test_a_missing_dataset_or_an_unknown_option_is_one_line_exit_2(capsys):
    for args, needle in (
        (["evaluate", "transfer", "--model", "a.keras"], "Missing argument 'DIR|hub:USER/NAME[@REVISION]'"),
        (["validate"], "Missing argument"),
        (["generate", "--out", "x"], "Missing option '--source-model'"),
        (["evaluate", "gaussian", "DIR"], "Missing option '--model'"),
        (["generate", "--source-model", "m.keras", "--out", "x", "--bogus"], "No such option '--bogus'"),
        (["train", "--arch", "middle", "--out", "m.keras"], "'middle' is not one of 'source', 'target'"),
    ):
        code = run_with_friendly_errors(cli, args)
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and len(err.splitlines()) == 1, (args, err)


def test_output_prints_json_or_the_lines_and_nothing_else(capsys):
    calls = []

    def text():
        calls.append(1)
        return ["first line", "second line"]

    Output(as_json=True).result({"b": 1, "a": [1.5]}, text)
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"a": [1.5], "b": 1} and captured.err == "" and not calls
    assert captured.out.index('"a"') < captured.out.index('"b"')  # sorted
    Output().result({"b": 1}, text)
    assert capsys.readouterr().out == "first line\nsecond line\n" and calls == [1]
    Output().result({}, lambda: "one")
    assert capsys.readouterr().out == "one\n"
    for out, shown in ((Output(), True), (Output(quiet=True), False), (Output(as_json=True), False)):
        assert out.progress is shown
        out.note("[stage] done")
        assert capsys.readouterr().err == ("[stage] done\n" if shown else "")


def test_docs_list_every_command():
    text = DOCS.read_text()
    for path in COMMANDS:
        if path:
            assert f"`cifar10-fgs {' '.join(path)}" in text, path
