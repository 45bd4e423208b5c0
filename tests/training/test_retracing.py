"""Short trainings in a row (the quick trial's shape) trace each model once: no retracing warning."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np

from cifar10_fgs.data import Cifar10Split
from cifar10_fgs.models.inference import predict_logits
from cifar10_fgs.models.networks import load_model
from cifar10_fgs.recipes import TARGET_RECIPE
from cifar10_fgs.training.train import train_model

from helpers import synthetic_images

RECIPE = dataclasses.replace(TARGET_RECIPE, epochs=1, batch_size=64)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_four_short_trainings_and_predictions_warn_of_no_retracing(tmp_path, monkeypatch):
    """As in a fresh process (the quick trial's): TensorFlow keeps its recent-tracing history per code object
    for the whole process, so the short fits of earlier tests would count against this one; start it anew."""
    from tensorflow.python.eager.polymorphic_function import polymorphic_function as pf

    monkeypatch.setattr(pf, "_frequent_tracing_detector_manager", pf._FrequentTracingDetectorManager())

    train = Cifar10Split(*synthetic_images(100, seed=31), origin="synthetic", split="train")  # 2 steps: 64 + 36
    test = Cifar10Split(*synthetic_images(40, seed=32), origin="synthetic", split="test")
    records = _Records()
    tf_log = logging.getLogger("tensorflow")
    tf_log.addHandler(records)
    try:
        outs = []
        for i in range(4):
            outs.append(tmp_path / f"m{i}.keras")
            train_model(train, test, outs[-1], arch="target", recipe=RECIPE, seed=i)
        models = [load_model(p) for p in outs]
        for model in models:  # one traced graph per model and batch size
            for batch_size in (16, 32, 64):
                predict_logits(model, test.images, batch_size=batch_size)
    finally:
        tf_log.removeHandler(records)
    assert not [m for m in records.messages if "retracing" in m], records.messages

    history = [json.loads(line) for line in outs[-1].with_suffix(".history.jsonl").read_text().splitlines()]
    assert {"val_loss", "val_accuracy", "loss", "accuracy"} <= set(history[-1])


def test_the_validation_numbers_are_what_keras_evaluation_reports():
    from cifar10_fgs.training.fitting import compiled_model, validation_callback

    test = Cifar10Split(*synthetic_images(70, seed=33), origin="synthetic", split="test")
    model = compiled_model(dataclasses.replace(RECIPE, label_smoothing=0.1), steps_per_epoch=2)
    callback = validation_callback(test)
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    loss, accuracy = model.evaluate(test.images.astype(np.float32), np.eye(10)[test.labels], batch_size=32, verbose=0)
    assert abs(logs["val_loss"] - loss) < 1e-5 and abs(logs["val_accuracy"] - accuracy) < 1e-6
