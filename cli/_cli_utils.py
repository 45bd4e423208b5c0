"""Options declared once and shared by every command, plus output helpers (only the CLI prints)."""

from __future__ import annotations

import json
import logging
import os

import click

from cifar10_fgs import config
from cifar10_fgs.data import DEFAULT_SOURCE
from cifar10_fgs.provenance import dumps_sorted

SOURCE_HELP = (
    "CIFAR-10: a path (cifar-10-python.tar.gz, cifar-10-batches-py/, an image folder or its .tar.gz, "
    "a save_to_disk folder, parquet/arrow files), 'hub:<repo_id>' or 'keras'."
)


def source_option(purpose: str | None = None):
    """``--source DATA``: the CIFAR-10 to read; with ``purpose``, optional (default None) and only for that."""
    if purpose is None:
        return click.option(
            "--source", "source", default=DEFAULT_SOURCE, show_default=True, metavar="DATA", help=SOURCE_HELP
        )
    return click.option("--source", "source", default=None, metavar="DATA", help=f"{purpose} {SOURCE_HELP}")


def _sentence(prefix: str, text: str) -> str:
    """``text`` after ``prefix`` (e.g. "With --upload: "), or on its own, capitalized."""
    return prefix + text if prefix else text[0].upper() + text[1:]


def no_source_model_option(prefix: str = ""):
    """``--no-source-model``: publish the data without the source model (``upload_dataset(ship_model=False)``)."""
    return click.option(
        "--no-source-model",
        "no_source_model",
        is_flag=True,
        help=_sentence(
            prefix,
            "publish the data without the source model (shipped under source_model/ by default; "
            "validate hub:... then needs --model).",
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
    """``--epochs N`` (default None: ``recipe``'s epochs from ``config.py``)."""
    return click.option(
        "--epochs",
        type=click.IntRange(min=1),
        default=None,
        help=f"Epochs (default: {recipe}, see cifar10_fgs/config.py).",
    )


def overwrite_option(text: str = "Replace existing output made with other settings."):
    """``--overwrite``; ``text`` says what it replaces."""
    return click.option("--overwrite", is_flag=True, help=text)


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
    help=f"Images per forward+backward (default: {config.ATTACK_BATCH_SIZE} on CPU, {config.GPU_BATCH_SIZE} per GPU).",
)
predict_batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=config.PREDICT_BATCH_SIZE,
    show_default=True,
    help="Images per inference batch.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
unsafe_model_option = click.option(
    "--unsafe-model",
    is_flag=True,
    help="Allow models with Lambda layers (runs code from the file; only for trusted files).",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
verbose_option = click.option("--verbose", "-v", is_flag=True, help="Log what the library does.")


def setup(verbose: bool = False, tensorflow: bool = True) -> None:
    """Logging for the library; TensorFlow's start-up chatter silenced unless --verbose or debug."""
    from ._errors import debug_enabled

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


def emit_json(obj) -> None:
    click.echo(dumps_sorted(obj), nl=False)


def table(rows: list[tuple], headers: tuple[str, ...]) -> str:
    cells = [tuple(str(c) for c in r) for r in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(cells[0]), line(tuple("-" * w for w in widths)), *map(line, cells[1:])])


def fmt(x, digits: int = 4) -> str:
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


__all__ = ["json", "click"]
