"""Do a row's logits and gradient signs depend on how the gradient function was traced, or on the batch size?

    python benchmarks/trace_bits.py --source-model M.keras [--sizes 1,2,8,64,128]

Compares, on one seeded batch of 256 random images (every loss code of the ladder), the rows of:
  today     a ``tf.function`` called at 256 (how every shard so far was made)
  static    ``attack.gradient.GradientFn``: one trace per size with a static batch dimension
  dynamic   one trace with ``input_signature`` batch dimension ``None``, called at each size
Prints whether each size's rows equal the 256 rows bit for bit, and each trace's first-call seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source-model", required=True, type=Path)
    p.add_argument("--sizes", default="1,2,8,64,128")
    args = p.parse_args(argv)
    import numpy as np
    import tensorflow as tf

    from cifar10_fgs.attack.gradient import _grad_sign, make_gradient_fn
    from cifar10_fgs.attack.ladder import LOSS_RUNNER_UP
    from cifar10_fgs.models.networks import load_model

    model = load_model(args.source_model)
    rng = np.random.default_rng(5)
    B = 256
    x = rng.integers(0, 256, (B, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, B).astype(np.int32)
    code = rng.integers(LOSS_RUNNER_UP, 10, B).astype(np.int32)
    spec = [tf.TensorSpec([None, 32, 32, 3]), tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32)]
    fns = {
        "today": tf.function(_grad_sign(model), reduce_retracing=True),
        "static": make_gradient_fn(model),
        "dynamic": tf.function(_grad_sign(model), input_signature=spec),
    }

    def run(name, n):
        t = time.perf_counter()
        z, g = fns[name](tf.constant(x[:n]), tf.constant(y[:n]), tf.constant(code[:n]))
        return z.numpy(), g.numpy(), round(time.perf_counter() - t, 2)

    full = {name: run(name, B) for name in fns}
    same = {name: bool(np.array_equal(full[name][0], full["today"][0])) for name in ("static", "dynamic")}
    report = {
        "model": args.source_model.name,
        "first_call_s_at_256": {name: full[name][2] for name in fns},
        "logits_equal_today_at_256": same,
        "signs_equal_today_at_256": {n: bool(np.array_equal(full[n][1], full["today"][1])) for n in same},
        "rows_equal_own_256": {},
    }
    for n in (int(s) for s in args.sizes.split(",")):
        row = {}
        for name in ("static", "dynamic"):
            z, g, seconds = run(name, n)
            row[name] = {"equal": bool(np.array_equal(z, full[name][0][:n]) and np.array_equal(g, full[name][1][:n]))}
            row[name]["first_call_s"] = seconds
        report["rows_equal_own_256"][n] = row
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
