"""Several devices through tf.distribute.MirroredStrategy, shown on two logical CPU devices.

A GPU machine runs the same code with one replica per GPU; here the CPU is split in two.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_mirrored_strategy_gives_the_single_device_results_at_the_per_replica_batch(
    tiny_keras_path, image_folder_source
):
    root, data = image_folder_source
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from cifar10_fgs.attack.fgs import attack_arrays, iterate_attack, AttackRecord
        from cifar10_fgs.attack.gradient import make_gradient_fn
        from cifar10_fgs.config import AttackConfig
        from cifar10_fgs.data import load_cifar10
        from cifar10_fgs.models.networks import load_model
        test = load_cifar10({str(root)!r}, "test")
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        with strategy.scope():
            mirrored = load_model({str(tiny_keras_path)!r})
        fn = make_gradient_fn(mirrored, strategy)
        parts = list(iterate_attack(mirrored, test.images, test.labels, AttackConfig(batch_size=16), gradient_fn=fn))
        multi = AttackRecord.concat(parts)
        multi = multi.take(np.argsort(multi.index))
        single = attack_arrays(load_model({str(tiny_keras_path)!r}), test.images, test.labels, AttackConfig(batch_size=8))
        assert multi.fooled.all()
        assert np.array_equal(multi.adversarial, single.adversarial), "rows differ from single-device batch 8"
        assert np.array_equal(multi.iterations, single.iterations)
        print("OK", int(multi.iterations.sum()))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().startswith("OK")
