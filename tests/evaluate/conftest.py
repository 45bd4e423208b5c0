"""Fixtures of the evaluation tests: one generated dataset per module, datasets' cache kept out of ~/.cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from cifar10_fgs.config import AttackConfig
from cifar10_fgs.generate.core import GenerateOptions, generate_dataset


@pytest.fixture(scope="module", autouse=True)
def datasets_cache(tmp_path_factory):
    """Keep datasets' Arrow cache of the test folders out of the user's ~/.cache."""
    import datasets

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf_cache"))
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_keras_path, image_folder_source) -> Path:
    """A dataset generated from the image-folder fixture by the tiny model (shards of 25 rows)."""
    root, _ = image_folder_source
    out = tmp_path_factory.mktemp("ev") / "ds"
    generate_dataset(
        out, tiny_keras_path, GenerateOptions(cifar10=root, attack=AttackConfig(batch_size=32), rows_per_shard=25)
    )
    return out
