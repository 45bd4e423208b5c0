"""Options declared once and shared by every command, and the one printer of results (only the CLI prints).

Names, the same in every command: ``--cifar10 DATA`` is the CIFAR-10 input, ``--source-model M.keras``
the attacked model, ``--model`` (repeatable) a model being scored, and the dataset folder the first
argument ``DIR``. ``@output_options`` adds ``--json``, ``-q`` and ``-v`` and hands the command an
:class:`Output`, whose ``result`` writes the JSON or the human lines.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import click
from click.core import ParameterSource

from cifar10_fgs import config
from cifar10_fgs.data import DEFAULT_CIFAR10, SPLITS
from cifar10_fgs.provenance import dumps_sorted

from ._errors import debug_enabled

CIFAR10_HELP = (
    "CIFAR-10: a path (cifar-10-python.tar.gz, cifar-10-batches-py/, an image folder or its .tar.gz, "
    "a save_to_disk folder, parquet/arrow files), 'hub:<repo_id>' or 'keras'."
)


def cifar10_option(purpose: str | None = None):
    """``--cifar10 DATA``: the CIFAR-10 to read; with ``purpose``, optional (default None) and only for that."""
    if purpose is None:
        return click.option(
            "--cifar10", "cifar10", default=DEFAULT_CIFAR10, show_default=True, metavar="DATA", help=CIFAR10_HELP
        )
    return click.option("--cifar10", "cifar10", default=None, metavar="DATA", help=f"{purpose} {CIFAR10_HELP}")


def source_model_option(text: str, required: bool = False):
    """``--source-model M.keras``: the attacked (source) model; ``text`` says what the command does with it."""
    default = {} if required else {"default": None}  # click 8.2+: an explicit default satisfies required
    return click.option(
        "--source-model",
        "source_model",
        type=click.Path(dir_okay=False),
        required=required,
        metavar="M.keras",
        help=text,
        **default,
    )


def dataset_argument(hub: bool = False):
    """The dataset folder ``DIR``, the first argument of every command that reads one (``hub``: or a hub copy)."""
    if hub:
        return click.argument("dataset_dir", metavar="DIR|hub:USER/NAME[@REVISION]")
    return click.argument("dataset_dir", metavar="DIR", type=click.Path(file_okay=False))


def choice(kind, *extra: str) -> click.Choice:
    """A click choice of the values of the enum ``kind`` (and ``extra`` words such as "all")."""
    return click.Choice([*(m.value for m in kind), *extra])


def _sentence(prefix: str, text: str) -> str:
    """``text`` after ``prefix`` (e.g. "With --upload: "), or on its own, capitalized."""
    return prefix + text if prefix else text[0].upper() + text[1:]


def no_source_model_option(prefix: str = ""):
    """``--no-source-model``: publish the data without the source model (``upload_dataset(ship_source_model=False)``)."""
    return click.option(
        "--no-source-model",
        "no_source_model",
        is_flag=True,
        help=_sentence(
            prefix,
            "publish the data without the source model (shipped under source_model/ by default; "
            "validate hub:... then needs --source-model).",
        ),
    )


def private_option(prefix: str = ""):
    """``--private``: create the hub repo private (``upload_dataset(private=True)``)."""
    return click.option(
        "--private", is_flag=True, help=_sentence(prefix, "create the repo private (refuses an existing public repo).")
    )


def allow_failures_option(effect: str = "Exit 0"):
    """``--allow-failures``: accept images not fooled within max_iterations; ``effect``: what the command does then."""
    return click.option(
        "--allow-failures",
        is_flag=True,
        help=f"{effect} even if some images were not fooled (they are listed in generation.json).",
    )


def seed_option(text: str = "Random seed."):
    """``--seed N`` (default 0); ``text`` says what it seeds."""
    return click.option("--seed", type=int, default=0, show_default=True, help=text)


def epochs_option(recipe: str = "the recipe's"):
    """``--epochs N`` (default None: ``recipe``'s epochs from ``recipes.py``)."""
    return click.option(
        "--epochs",
        type=click.IntRange(min=1),
        default=None,
        help=f"Epochs (default: {recipe}, see cifar10_fgs/recipes.py).",
    )


def out_dir_option(text: str, dest: str = "dataset_dir"):
    """``--out DIR``, required: the folder the command writes, passed as ``dest`` (a dataset folder unless
    said otherwise); ``text`` says what goes there."""
    return click.option("--out", dest, type=click.Path(file_okay=False), required=True, help=text)


def overwrite_option(text: str = "Replace existing output made with other settings."):
    """``--overwrite``; ``text`` says what it replaces."""
    return click.option("--overwrite", is_flag=True, help=text)


def scored_model_option(metavar: str, text: str):
    """``--model``: a model being scored, repeatable (one --model per model); ``text`` says what is scored."""
    return click.option("--model", "models", multiple=True, required=True, metavar=metavar, help=text)


def results_name_option(default: str):
    """``--name NAME``: the results files DIR/results/NAME.*; ``default`` says the evaluation's own."""
    return click.option(
        "--name",
        default=None,
        metavar="NAME",
        help=f"Results are written to DIR/results/NAME.json|.md|*.png (default: {default}).",
    )


evaluate_cifar10_option = cifar10_option(
    "The original CIFAR-10 the dataset was made from (default: the one recorded in DIR/generation.json)."
)
split_option = click.option(  # the split an evaluation scores
    "--split",
    type=click.Choice(SPLITS),
    default="test",
    show_default=True,
    help="Which split to evaluate on.",
)
limit_option = click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Attack a seeded class-balanced subset of N images of each split (N/10 per class).",
)
train_limit_option = click.option(
    "--train-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Train on a seeded class-balanced subset of N training images.",
)
batch_size_option = click.option(  # the attack's batch
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help=f"Images per forward+backward (default: {config.AttackConfig().batch_size} on CPU, {config.GPU_BATCH_SIZE} per GPU).",
)
predict_batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=config.PREDICT_BATCH_SIZE,
    show_default=True,
    help="Images per inference batch.",
)
unsafe_model_option = click.option(
    "--unsafe-model",
    is_flag=True,
    help="Allow models with Lambda layers (runs code from the file; only for trusted files).",
)


@dataclass(frozen=True)
class Output:
    """How one command reports, from ``--json``, ``-q`` and ``-v``: the one place results are printed."""

    as_json: bool = False
    quiet: bool = False
    verbose: bool = False

    @property
    def progress(self) -> bool:
        """Progress bars and stage lines: not with -q, nor with --json (stdout is then only the JSON)."""
        return not (self.quiet or self.as_json)

    def result(self, obj, text: Callable[[], str | Iterable[str]]) -> None:
        """The command's result: ``obj`` as sorted JSON with --json, else the lines ``text()`` gives."""
        if self.as_json:
            click.echo(dumps_sorted(obj), nl=False)
            return
        lines = text()
        click.echo(lines if isinstance(lines, str) else "\n".join(lines))

    def note(self, line: str) -> None:
        """A line about the work under way (stderr), shown when progress is."""
        if self.progress:
            click.echo(line, err=True)


_OUTPUT_OPTIONS = (
    click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (and nothing else on stdout)."),
    click.option("--quiet", "-q", is_flag=True, help="No progress bars."),
    click.option("--verbose", "-v", is_flag=True, help="Log what the library does."),
)


def output_options(func=None, *, tensorflow: bool = True):
    """Add ``--json``, ``-q``, ``-v``; set logging up (``setup``) and pass ``output=Output(...)`` to the command.

    Use it right above the command's function (its options then come last in --help);
    ``tensorflow=False`` for commands that never load TensorFlow.
    """

    def decorate(f):
        @functools.wraps(f)
        def command(*args, as_json: bool, quiet: bool, verbose: bool, **kwargs):
            setup(verbose, tensorflow=tensorflow)
            return f(*args, output=Output(as_json=as_json, quiet=quiet, verbose=verbose), **kwargs)

        for option in reversed(_OUTPUT_OPTIONS):
            command = option(command)
        return command

    return decorate(func) if func is not None else decorate


def setup(verbose: bool = False, tensorflow: bool = True) -> None:
    """Logging for the library; TensorFlow's start-up chatter silenced unless --verbose or debug."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if tensorflow and not (verbose or debug_enabled()):
        _quiet_tensorflow_startup()


def _quiet_tensorflow_startup() -> None:
    """TensorFlow's C++ start-up lines ignore TF_CPP_MIN_LOG_LEVEL: send stderr to /dev/null meanwhile."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def table(rows: list[tuple], headers: tuple[str, ...]) -> str:
    cells = [tuple(str(c) for c in r) for r in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(cells[0]), line(tuple("-" * w for w in widths)), *map(line, cells[1:])])


def given_options(ctx: click.Context, *names: str) -> list[str]:
    """The flags of the options ``names`` (parameter names) the user gave, on the command line or in the environment
    (``ctx.get_parameter_source``), so an option that would be ignored can be refused before any work."""
    params = {p.name: p for p in ctx.command.params}
    defaults = (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    return [
        "/".join((*params[n].opts, *params[n].secondary_opts))
        for n in names
        if ctx.get_parameter_source(n) not in defaults
    ]


def refuse_given(ctx: click.Context, names, applies_to: str) -> None:
    """A one-line usage error if the user gave one of the options ``names``: they apply to ``applies_to`` only."""
    wrong = given_options(ctx, *names)
    if wrong:
        raise click.UsageError(f"{wrong[0]} applies to {applies_to} only: omit it")


def examples(*lines: str) -> str:
    """A command's epilog: its --help ends with these example command lines (``\\b``: not rewrapped)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
