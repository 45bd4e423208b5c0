"""The source's logits on the originals: each row predicted once, shared by the source check and the entry order."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import cifar10_fgs.generate.originals as originals_module
from cifar10_fgs.data import Cifar10Split
from cifar10_fgs.generate.originals import OriginalLogits
from cifar10_fgs.models.inference import predict_logits

from helpers import synthetic_images, tiny_model


def test_each_row_is_predicted_once_and_equals_a_direct_prediction(monkeypatch):
    model = tiny_model(seed=1)
    images, labels = synthetic_images(40, seed=3)
    data = Cifar10Split(images, labels, "synthetic", "test")
    asked = []

    def counting(m, x, batch_size):
        asked.append(len(x))
        return predict_logits(m, x, batch_size)

    monkeypatch.setattr(originals_module, "predict_logits", counting)
    originals = OriginalLogits(model, batch_size=16)
    first = originals.of(data, np.array([5, 1, 5, 30]))
    assert asked == [3]  # rows 1, 5 and 30, once each
    assert np.allclose(first, predict_logits(model, images[[5, 1, 5, 30]], 16), atol=1e-6)
    again = originals.of(data, np.array([30, 1]))
    assert asked == [3] and np.array_equal(again, first[[3, 1]])  # read back, bit for bit, nothing predicted
    whole = originals.of(data, np.arange(40))
    assert asked == [3, 37]
    assert np.allclose(whole, predict_logits(model, images, 16), atol=1e-6)
    other = Cifar10Split(images[:10], labels[:10], "synthetic", "train")  # another split: its own rows
    originals.of(other, np.arange(10))
    assert asked == [3, 37, 10]


def test_a_short_stream_enters_by_margin_a_long_one_in_row_order_and_the_shards_agree(
    tiny_keras_path, image_folder_source, tmp_path, monkeypatch, caplog
):
    import cifar10_fgs.generate.stream as stream
    from cifar10_fgs.config import AttackConfig
    from cifar10_fgs.generate.core import GenerateOptions, generate_dataset

    root, _ = image_folder_source
    options = GenerateOptions(rows_per_shard=16)  # both splits, 100 rows, one stream
    digests = {}
    for name, ranked_up_to in (("ranked", 100), ("row order", 99)):
        monkeypatch.setattr(stream, "RANKED_STREAM_ROWS", ranked_up_to)
        caplog.clear()
        with caplog.at_level("INFO", logger="cifar10_fgs.generate.stream"):
            generate_dataset(
                tmp_path / name, tiny_keras_path, replace(options, cifar10=root, attack=AttackConfig(batch_size=8))
            )
        assert ("enter by margin" in caplog.text) == (name == "ranked")
        digests[name] = sorted((p.name, p.read_bytes()) for p in (tmp_path / name / "data").iterdir())
    assert len(digests["ranked"]) == 7 and digests["ranked"] == digests["row order"]


def test_the_order_given_to_the_attack_ranks_the_streams_own_rows_also_on_resume(
    tiny_keras_path, image_folder_source, tmp_path, monkeypatch
):
    """Two splits in one stream, then a resume holding one shard of each: the order ranks exactly those rows."""
    import cifar10_fgs.generate.stream as stream
    from cifar10_fgs.attack.schedule import entry_order
    from cifar10_fgs.config import AttackConfig
    from cifar10_fgs.generate.core import GenerateOptions, generate_dataset
    from cifar10_fgs.models.networks import load_model

    captured = []
    real = stream.iterate_attack

    def spy(model, images, labels, config, **kwargs):
        captured.append((images.copy(), labels.copy(), kwargs["order"]))
        return real(model, images, labels, config, **kwargs)

    monkeypatch.setattr(stream, "iterate_attack", spy)
    root, _ = image_folder_source
    out, options, cfg = tmp_path / "g", GenerateOptions(rows_per_shard=16), AttackConfig(batch_size=8)
    generate_dataset(out, tiny_keras_path, replace(options, cifar10=root, attack=cfg))
    for name in ("train-00001-of-00004.arrow", "test-00002-of-00003.arrow"):  # 16 and 8 rows
        (out / "data" / name).unlink()
    generate_dataset(out, tiny_keras_path, replace(options, cifar10=root, attack=cfg))
    assert [len(labels) for _, labels, _ in captured] == [100, 24]
    model = load_model(tiny_keras_path)
    for images, labels, order in captured:
        assert np.array_equal(order, entry_order(predict_logits(model, images), labels))
