"""Matplotlib figures without pyplot (no global state, no display), saved as PNG atomically."""

from __future__ import annotations

import io
from pathlib import Path

from cifar10_fgs.provenance import atomic_write_bytes


def new_figure(width: float, height: float, dpi: int = 100):
    """A Figure (inches) on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: Path, **savefig) -> None:
    """Write ``fig`` to ``path`` as PNG via a fsynced temp file (``savefig`` options passed through)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig)
    atomic_write_bytes(path, buf.getvalue())
