"""What every ``evaluate`` subcommand does first and last: its ``EvaluateOptions`` fields, its quiet
inference, and the line naming the files it wrote."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from .._cli_utils import Output


def quiet_inference(output: Output) -> None:
    """TensorFlow's retracing warnings (one per inference call) silenced unless -v."""
    if not output.verbose:
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", message=".*shuffle=True. was passed.*")  # keras, on tf.data input


def evaluate_options(output: Output, cifar10, batch_size, name, overwrite, unsafe_model, model_input=None) -> dict:
    """The ``EvaluateOptions`` fields every subcommand sets (``name`` only when given: each has its default).

    Also silences TensorFlow's per-call warnings (``quiet_inference``), as every subcommand starts here.
    """
    quiet_inference(output)
    common = {"cifar10": cifar10, "batch_size": batch_size, "overwrite": overwrite, "unsafe_model": unsafe_model}
    common["progress"] = output.progress
    if model_input is not None:
        common["model_input"] = model_input
    return common if name is None else {**common, "name": name}


def written(result, dataset_dir) -> str:
    """The line naming the files an evaluation wrote: its JSON, its markdown and its plots."""
    paths = [result.json_path, result.markdown_path, *(str(Path(dataset_dir) / p) for p in result.plots)]
    return "wrote " + ", ".join(paths)
