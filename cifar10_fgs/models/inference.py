"""Running a model: batched inference, softmax / log-softmax, the device strategy and the batch policy.

Both models take uint8 pixels in [0, 255] and output logits (``config``). ``predict_logits`` runs
fixed-size batches (the tail zero-padded): a row's logits never depend on the other rows, and the same
batch size always gives the same bytes. Other sizes gave the same bits from 2 to 500 rows, a batch of one
other last bits (measured on a CPU, docs/attack.md), so whatever must reproduce stored bytes uses the
recorded batch size. Attack, training, validate and evaluate all predict through here.
"""

from __future__ import annotations

import weakref

import numpy as np

from cifar10_fgs.config import GPU_BATCH_SIZE, NUM_LOGITS, PREDICT_BATCH_SIZE, AttackConfig


def default_batch_size() -> int:
    """The attack's batch: ``AttackConfig().batch_size`` on CPU, ``GPU_BATCH_SIZE`` per GPU where TensorFlow sees GPUs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return GPU_BATCH_SIZE * len(gpus) if gpus else AttackConfig().batch_size


def device_strategy():
    """A MirroredStrategy over every GPU when TensorFlow sees more than one, else None."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy([d.name for d in gpus]) if len(gpus) > 1 else None


_FORWARD_FNS: weakref.WeakKeyDictionary = (
    weakref.WeakKeyDictionary()
)  # model -> {(batch size, image shape): traced graph}


def _forward_fn(model, batch_size: int, shape: tuple):
    """The model's inference graph on ``batch_size`` rows of ``shape``, traced once per (model, size) and kept.

    Traced with ``get_concrete_function`` on a static shape: one graph per size on purpose, never a
    retrace (a ``tf.function`` per model would share one code object across models, and TensorFlow
    counts their first traces as retracing of one function).
    """
    import tensorflow as tf

    traced = _FORWARD_FNS.setdefault(model, {})
    fn = traced.get((batch_size, shape))
    if fn is None:
        ref = weakref.ref(model)  # no strong reference from the value back to its key

        def forward(x):
            live = ref()
            assert live is not None  # traced and run only while the model (the key) is alive
            return live(x, training=False)

        spec = tf.TensorSpec([batch_size, *shape], tf.float32)
        fn = tf.function(forward, autograph=False).get_concrete_function(spec)
        traced[(batch_size, shape)] = fn
    return fn


def predict_logits(model, images: np.ndarray, batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
    """Logits of ``model`` on uint8 images in fixed-size batches (tail zero-padded), inference mode."""
    import tensorflow as tf

    fn = _forward_fn(model, batch_size, tuple(images.shape[1:]))
    out = np.zeros((len(images), NUM_LOGITS), np.float32)
    buf = np.zeros((batch_size, *images.shape[1:]), np.float32)
    for i in range(0, len(images), batch_size):
        n = min(batch_size, len(images) - i)
        buf[:n] = images[i : i + n]
        buf[n:] = 0
        out[i : i + n] = fn(tf.constant(buf)).numpy()[:n]
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities from logits along the last axis (max subtracted first), in the logits' dtype."""
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (stable: max subtracted first)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
