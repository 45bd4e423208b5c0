"""The one-pixel attack (Su, Vargas and Sakurai 2019), the paper's slow baseline.

Differential evolution (SciPy) over one pixel ``(row, col, r, g, b)``, minimising the model's
probability of the true class; it stops as soon as a candidate is misclassified. Each DE
generation's whole population is evaluated as one model batch (``vectorized=True``).
Defaults (``config.OnePixelConfig``) follow Su et al.: population 400, at most 100 generations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from cifar10_fgs.attack.fgs import AttackRecord, perturbation_norms
from cifar10_fgs.config import OnePixelConfig, Phase
from cifar10_fgs.models.inference import softmax

log = logging.getLogger(__name__)


def _apply(image: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """Images with one pixel set per candidate row ``(row, col, r, g, b)``."""
    out = np.repeat(image[None], len(cands), axis=0)
    r = np.clip(cands[:, 0].astype(int), 0, 31)
    c = np.clip(cands[:, 1].astype(int), 0, 31)
    out[np.arange(len(cands)), r, c] = np.clip(np.rint(cands[:, 2:5]), 0, 255).astype(np.uint8)
    return out


def iterate_onepixel(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    config: OnePixelConfig = OnePixelConfig(),
    *,
    indices: np.ndarray | None = None,
) -> Iterator[AttackRecord]:
    """Attack each image in turn; yields one single-row record per image (``iterations`` = generations)."""
    import tensorflow as tf
    from scipy.optimize import differential_evolution

    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    indices = np.arange(len(images)) if indices is None else np.asarray(indices)

    def logits(batch: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(batch), config.batch_size):
            part = batch[i : i + config.batch_size]
            pad = np.zeros((config.batch_size, 32, 32, 3), np.float32)
            pad[: len(part)] = part
            out.append(fn(tf.constant(pad)).numpy()[: len(part)])
        return np.concatenate(out)

    bounds = [(0, 32), (0, 32), (0, 256), (0, 256), (0, 256)]
    for i, (image, label) in enumerate(zip(images, labels)):
        z0 = logits(image[None])[0]
        orig_pred, orig_conf = int(z0.argmax()), float(softmax(z0).max())
        state = {"best": image, "gens": 0, "fooled": orig_pred != label}

        def objective(xs):  # xs: (5, S) with vectorized=True
            cand = _apply(image, xs.T)
            z = logits(cand)
            wrong = z.argmax(axis=1) != label
            if wrong.any() and not state["fooled"]:
                state["fooled"] = True
                state["best"] = cand[int(np.flatnonzero(wrong)[0])]
            return softmax(z)[:, label]

        def callback(*_args, **_kw):
            state["gens"] += 1
            return state["fooled"]

        if not state["fooled"]:
            differential_evolution(
                objective,
                bounds,
                maxiter=config.max_generations,
                popsize=max(1, config.population // 5),
                recombination=1.0,
                mutation=0.5,
                atol=-1,
                tol=0,
                polish=False,
                init="random",
                vectorized=True,
                updating="deferred",
                seed=config.seed,
                callback=callback,
            )
        adv = state["best"][None]
        z = logits(adv)[0]
        linf, l2 = perturbation_norms(adv, image[None], 255.0)
        yield AttackRecord(
            index=np.array([indices[i]], np.int64),
            label=np.array([label], np.int64),
            adversarial=adv,
            original_prediction=np.array([orig_pred]),
            original_confidence=np.array([orig_conf], np.float32),
            adversarial_prediction=np.array([int(z.argmax())]),
            adversarial_confidence=np.array([softmax(z).max()], np.float32),
            iterations=np.array([state["gens"]], np.int32),
            fooled=np.array([int(z.argmax()) != label]),
            linf=linf.astype(np.float32),
            l2=l2.astype(np.float32),
            phase=np.array([(Phase.ONEPIXEL if state["gens"] else Phase.UNCHANGED).code], np.int8),
            evaluations=np.array([state["gens"]], np.int32),
        )
