"""How models take their pixels, on the command line: one decorator for every command that loads models.

``@model_input_options`` adds ``--input-layout``, ``--input-scale``, ``--input-mean``, ``--input-std`` and
``--model-output`` and hands the command one ``model_input`` argument (a ``convention.Declared``, empty
when none is given). They apply to every model the command loads from ``--model`` (``evaluate``) or
``--source-model`` (``generate``, ``validate``), Keras or ONNX; a model's ``cifar10-fgs.json`` may declare
the same fields, and a field both declare differently is refused (see ``cifar10_fgs.models.convention``).
"""

from __future__ import annotations

import functools

import click

from cifar10_fgs.models.convention import COMMAND_LINE, OPTION, SIDECAR, Layout, Output, parse_declared

_NOTE = f"Applies to every model loaded (a {SIDECAR} beside the model may declare it instead)."
_OPTIONS = (
    click.option(
        OPTION["layout"],
        "input_layout",
        type=click.Choice([x.value for x in Layout], case_sensitive=False),
        default=None,
        help=f"Pixel layout the model takes (default: read from its input shape, else NHWC for Keras, NCHW for "
        f"ONNX). {_NOTE}",
    ),
    click.option(
        OPTION["scale"],
        "input_scale",
        type=click.Choice(["1", "255"]),
        default=None,
        help=f"Pixel range the model takes: 1 = [0, 1], 255 = [0, 255] (default: 255 for Keras, 1 for ONNX). {_NOTE}",
    ),
    click.option(
        OPTION["mean"],
        "input_mean",
        default=None,
        metavar="R,G,B",
        help=f"Per-channel mean subtracted after scaling, e.g. 0.4914,0.4822,0.4465 (with {OPTION['std']}). {_NOTE}",
    ),
    click.option(
        OPTION["std"],
        "input_std",
        default=None,
        metavar="R,G,B",
        help=f"Per-channel std divided by after the mean, e.g. 0.2470,0.2435,0.2616. {_NOTE}",
    ),
    click.option(
        OPTION["output"],
        "model_output",
        type=click.Choice([x.value for x in Output]),
        default=None,
        help=f"What the model returns: logits (default) or probabilities (softmax; the attack takes the logits "
        f"before a final softmax layer). {_NOTE}",
    ),
)


def model_input_options(command):
    """Add the input-convention options to ``command``; it receives them as one ``model_input`` argument."""

    @functools.wraps(command)
    def wrapper(*args, input_layout, input_scale, input_mean, input_std, model_output, **kwargs):
        given = {"layout": input_layout, "scale": input_scale, "mean": input_mean, "std": input_std}
        kwargs["model_input"] = parse_declared({**given, "output": model_output}, COMMAND_LINE)
        return command(*args, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
