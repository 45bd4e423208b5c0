"""The Keras pieces one training fit is made of, built from a recipe.

The learning-rate schedule (warm-up then cosine, per cycle) and the optimizer, the compiled model with its
label-smoothed loss, the tf.data pipeline (flip + reflect-pad-4 crop), and the validation and backup callbacks.
Keras and TensorFlow are imported on first use.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cifar10_fgs.config import PREDICT_BATCH_SIZE
from cifar10_fgs.data import NUM_CLASSES, Cifar10Split
from cifar10_fgs.errors import ConfigError
from cifar10_fgs.models.inference import predict_logits
from cifar10_fgs.models.networks import build_model
from cifar10_fgs.recipes import TrainRecipe


def lr_schedule(recipe: TrainRecipe, steps_per_epoch: int):
    """Per step: in each of ``recipe.cycles()``, linear warm-up from peak/10 to peak, then cosine to 0."""
    import keras

    cycles = [
        (start * steps_per_epoch, max(1, (end - start) * steps_per_epoch), peak) for start, end, peak in recipe.cycles()
    ]
    warmup = max(1, int(recipe.warmup_epochs * steps_per_epoch))

    def cycle_lr(step, length, peak):
        warm = peak * (0.1 + 0.9 * step / warmup)
        progress = keras.ops.clip((step - warmup) / max(1, length - warmup), 0.0, 1.0)
        return keras.ops.where(step < warmup, warm, 0.5 * peak * (1.0 + keras.ops.cos(math.pi * progress)))

    class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            step = keras.ops.cast(step, "float32")
            lr = cycle_lr(step, cycles[0][1], cycles[0][2])
            for start, length, peak in cycles[1:]:
                lr = keras.ops.where(step >= start, cycle_lr(step - start, length, peak), lr)
            return lr

        def get_config(self):
            return {}

    return WarmupCosine()


def _optimizer(recipe: TrainRecipe, steps_per_epoch: int):
    import keras

    lr = lr_schedule(recipe, steps_per_epoch)
    wd = recipe.weight_decay or None
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=recipe.momentum, nesterov=True, weight_decay=wd)
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=wd)
    raise ConfigError(f"unknown optimizer {recipe.optimizer!r}: expected 'sgd' or 'adam'")


def compiled_model(recipe: TrainRecipe, steps_per_epoch: int):
    """``build_model(recipe)`` compiled with the recipe's optimizer, schedule and label-smoothed loss."""
    import keras

    model = build_model(recipe)
    model.compile(
        optimizer=_optimizer(recipe, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, *, augment: bool, shuffle: bool, seed: int):
    """tf.data pipeline of float32 [0, 255] images; augmentation is flip + reflect-pad-4 crop."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)

    def prepare(x, y):
        x = tf.cast(x, tf.float32)
        if augment:
            x = tf.image.random_flip_left_right(x)
            x = tf.pad(x, [[4, 4], [4, 4], [0, 0]], mode="REFLECT")
            x = tf.image.random_crop(x, (32, 32, 3))
        return x, y

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train_dataset(train: Cifar10Split, recipe: TrainRecipe, seed: int):
    """The shuffled, augmented (as the recipe says) batches ``fit`` reads, with one-hot labels."""
    ds = make_dataset(train.images, train.labels, recipe.batch_size, augment=recipe.augment, shuffle=True, seed=seed)
    return ds.map(lambda x, y: (x, _one_hot(y)))


def backup_callback(backup_dir: Path):
    """Keras BackupAndRestore; with a second copy so a kill while saving cannot lose the checkpoint."""
    import keras

    try:
        return keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False, double_checkpoint=True)
    except TypeError:  # Keras < 3.4
        return keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False)


def validation_callback(test: Cifar10Split):
    """``val_loss`` (the compiled loss) and ``val_accuracy`` on ``test`` into each epoch's logs.

    What ``fit(validation_data=...)`` reports, computed through ``inference.predict_logits``: the model's
    inference graph traced once, where Keras would trace a test function of its own for every model
    (all sharing one code object, so a few short fits in a row count as retracing to TensorFlow).
    """
    import keras

    class Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is None:
                return
            logits = predict_logits(self.model, test.images, batch_size=PREDICT_BATCH_SIZE)
            targets = keras.ops.one_hot(test.labels, NUM_CLASSES)
            logs["val_loss"] = float(keras.ops.convert_to_numpy(self.model.loss(targets, logits)))
            logs["val_accuracy"] = float((logits.argmax(axis=1) == test.labels).mean())

    return Validation()


def _one_hot(y):
    import tensorflow as tf

    return tf.one_hot(y, 10)
