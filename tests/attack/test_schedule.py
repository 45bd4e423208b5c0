"""The order images enter the slots: it changes the drain's length, never a result."""

from __future__ import annotations

import numpy as np
import pytest

from cifar10_fgs.attack.fgs import AttackConfig, AttackRecord, iterate_attack
from cifar10_fgs.attack.gradient import make_gradient_fn
from cifar10_fgs.attack.ladder import margin
from cifar10_fgs.attack.schedule import entry_order
from cifar10_fgs.errors import ConfigError
from cifar10_fgs.models.inference import predict_logits

from helpers import labels_the_model_gets_right, synthetic_images, tiny_model


@pytest.fixture(scope="module")
def setup():
    model = tiny_model(seed=3)
    images, _ = synthetic_images(150, seed=5)
    labels = labels_the_model_gets_right(model, images, wrong=6, batch_size=32)
    return model, images, labels


class _Rounds:
    """The gradient function, counting the rows of each call."""

    def __init__(self, fn):
        self.fn, self.rows = fn, []

    def __getattr__(self, name):
        return getattr(self.fn, name)

    def __call__(self, x, y, code=None):
        self.rows.append(int(x.shape[0]))
        return self.fn(x, y, code)


def _attack(model, images, labels, order=None):
    fn = _Rounds(make_gradient_fn(model))
    cfg = AttackConfig(batch_size=16)
    rec = AttackRecord.concat(
        list(iterate_attack(model, images, labels, cfg, gradient_fn=fn, drain=False, order=order))
    )
    return rec.take(np.argsort(rec.index, kind="stable")), fn.rows


def test_rows_enter_by_margin_largest_first_ties_in_row_order():
    z = np.array([[0, 5, 0], [3, 0, 0], [0, 0, 9], [1, 0, 0], [0, 2, 0], [0, 5, 0]], np.float32)
    y = np.array([1, 0, 2, 1, 1, 1])  # margins 5, 3, 9, -1 (already wrong), 2, 5
    assert entry_order(z, y).tolist() == [2, 0, 5, 1, 4, 3]
    assert entry_order(np.zeros((4, 10), np.float32), np.zeros(4, int)).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        entry_order(z, y[:2])


def test_any_entry_order_gives_the_same_records(setup):
    model, images, labels = setup
    plain, _ = _attack(model, images, labels)
    for order in (np.arange(len(images))[::-1].copy(), np.random.default_rng(1).permutation(len(images))):
        other, _ = _attack(model, images, labels, order)
        for field in AttackRecord.__dataclass_fields__:
            assert np.array_equal(getattr(other, field), getattr(plain, field)), field


def test_entering_by_margin_evaluates_fewer_padded_rows(setup):
    """Entering the hardest images first ends the run with fewer part-empty batches (here, of 16 slots)."""
    model, images, labels = setup
    plain, plain_rows = _attack(model, images, labels)
    z = predict_logits(model, images, 32)
    assert np.corrcoef(margin(z, labels), plain.evaluations)[0, 1] > 0.5  # the margin does stand for the work
    ranked, ranked_rows = _attack(model, images, labels, entry_order(z, labels))
    needed = int(plain.evaluations.sum())
    assert int(ranked.evaluations.sum()) == needed
    assert sum(ranked_rows) < sum(plain_rows), (sum(ranked_rows), sum(plain_rows), needed)


def test_an_order_that_is_not_a_permutation_is_refused(setup):
    model, images, labels = setup
    cfg = AttackConfig(batch_size=4)
    for order in ([0, 0, 1, 2], [0.2, 1.9, 2.5, 3.0], [[0, 1], [2, 3]], [True, False, True, True], [0, 1, 2]):
        with pytest.raises(ConfigError, match="permutation"):
            next(iterate_attack(model, images[:4], labels[:4], cfg, order=np.array(order)))
