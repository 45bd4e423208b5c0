"""Fixtures of the data tests."""

from __future__ import annotations

import pytest
from PIL import Image


@pytest.fixture
def decodes(monkeypatch):
    """How many images PIL opened (every decode of a PNG/JPEG goes through ``PIL.Image.open``)."""
    count = {"n": 0}
    real = Image.open

    def counting(*args, **kwargs):
        count["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting)
    return count
