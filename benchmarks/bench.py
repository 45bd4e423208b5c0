"""Performance of every stage, measured in one run on one machine, reported as medians and ratios.

    python benchmarks/bench.py --source-model SOURCE.keras --cifar10 DATA [--full] [--reps 3]

Writes ``benchmarks/results.json`` (sorted) and prints a table. Sections:
  ceiling     raw batched input-gradient throughput of the model at the generate batch size
  generate    the attack engine (no disk) and `generate` (shards on disk): img/s, gradient evals/s,
              efficiency = gradient evals/s / ceiling
  paper_way   one image and one gradient at a time on the same images: speedup of generate over it
  onepixel    seconds per image of the one-pixel attack vs FGS (paper: 12.2 s vs 0.089 s)
  gaussian    scipy gaussian_filter cost per image (paper: under 1 ms)
  batch_sweep ceiling and engine throughput per batch size (the default is picked from this)
  scaling     per-image attack time at 1k and 10k images (and 60k with --full)
  full        (--full) generate all 60k, validate, card: wall time and peak RSS of each command
Without --source-model a randomly initialised EfficientNetB0 is used (throughput is the same; iteration
counts are not meaningful). Without --cifar10 synthetic images are used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent


def median_of(fn, reps: int) -> float:
    return statistics.median(fn() for _ in range(reps))


def ceiling(gradient_fn, batch: int, reps: int, calls: int = 8) -> float:
    """Images per second of the raw batched forward+backward (input gradient) at ``batch``."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (batch, 32, 32, 3)).astype(np.float32))
    y = tf.constant(rng.integers(0, 10, batch).astype(np.int32))
    gradient_fn(x, y)[1].numpy()

    def once():
        t = time.perf_counter()
        for _ in range(calls):
            z, g = gradient_fn(x, y)
            g.numpy()
        return batch * calls / (time.perf_counter() - t)

    return median_of(once, reps)


def engine(model, images, labels, batch: int, gradient_fn) -> dict:
    from cifar10_fgs.attack.fgs import iterate_attack
    from cifar10_fgs.config import AttackConfig

    t = time.perf_counter()
    evals = n = fooled = 0
    for rec in iterate_attack(model, images, labels, AttackConfig(batch_size=batch), gradient_fn=gradient_fn):
        evals += int(rec.evaluations.sum())
        n += len(rec)
        fooled += int(rec.fooled.sum())
    dt = time.perf_counter() - t
    return {
        "images": n,
        "seconds": dt,
        "img_per_s": n / dt,
        "grad_evals_per_s": evals / dt,
        "gradient_evaluations": evals,
        "mean_iterations": evals / n - 1,
        "fooled_percent": 100 * fooled / n,
    }


def paper_way(model, images, labels, max_iterations: int = 200) -> dict:
    """One image and one gradient at a time, as the paper's loop did."""
    import tensorflow as tf

    from cifar10_fgs.attack.gradient import make_gradient_fn
    from cifar10_fgs.attack.step import fgs_step, quantize

    fn = make_gradient_fn(model)
    fn(tf.zeros((1, 32, 32, 3)), tf.zeros((1,), tf.int32))
    t = time.perf_counter()
    evals = 0
    for x0, y in zip(images, labels):
        acc = x0.astype(np.float64)
        for _ in range(max_iterations + 1):
            q = quantize(acc)
            z, g = fn(tf.constant(q[None].astype(np.float32)), tf.constant([y], tf.int32))
            evals += 1
            if int(np.argmax(z.numpy()[0])) != y:
                break
            acc = fgs_step(acc, g.numpy()[0], 0.01, 0.0, 255.0)
    dt = time.perf_counter() - t
    return {
        "images": len(images),
        "seconds": dt,
        "img_per_s": len(images) / dt,
        "grad_evals_per_s": evals / dt,
        "seconds_per_image": dt / len(images),
    }


def gaussian_cost(images, reps: int) -> dict:
    from scipy.ndimage import gaussian_filter

    x = images.astype(np.float32)

    def once():
        t = time.perf_counter()
        gaussian_filter(x, sigma=(0, 0.5, 0.5, 0))
        return (time.perf_counter() - t) / len(x)

    per = median_of(once, reps)
    return {"seconds_per_image": per, "images": len(x), "paper_seconds_per_image": 1e-3}


def run_cmd(cmd: list[str]) -> dict:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MiB, max over children so far
    return {
        "cmd": " ".join(cmd),
        "seconds": dt,
        "returncode": proc.returncode,
        "peak_rss_mib_so_far": rss,
        "stderr_tail": proc.stderr.strip().splitlines()[-1:] if proc.returncode else [],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source-model", dest="model", help="source model .keras (default: random-init EfficientNetB0)")
    ap.add_argument("--cifar10", help="CIFAR-10 input (default: synthetic images)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=2000, help="images for the generate/efficiency section")
    ap.add_argument("--paper-n", type=int, default=100, help="images for the one-at-a-time section")
    ap.add_argument("--onepixel-n", type=int, default=3)
    ap.add_argument("--batch-sweep", default="64,128,256,512")
    ap.add_argument("--scaling", default="1000,10000")
    ap.add_argument("--full", action="store_true", help="also generate+validate+card all 60k (minutes)")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    args = ap.parse_args(argv)

    import tensorflow as tf

    from cifar10_fgs.attack.gradient import make_gradient_fn
    from cifar10_fgs.attack.onepixel import iterate_onepixel
    from cifar10_fgs.config import OnePixelConfig
    from cifar10_fgs.models.inference import predict_logits
    from cifar10_fgs.models.networks import build_source, load_model
    from cifar10_fgs.provenance import library_versions, sha256_file, write_json
    from cifar10_fgs.recipes import SOURCE_RECIPE

    model = load_model(args.model) if args.model else build_source(SOURCE_RECIPE)
    if args.cifar10:
        from cifar10_fgs.data import load_cifar10

        test = load_cifar10(args.cifar10, "test")
        images, labels = test.images, test.labels
    else:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (10000, 32, 32, 3), dtype=np.uint8)
        labels = predict_logits(model, images).argmax(axis=1)
    fn = make_gradient_fn(model)
    B = args.batch_size
    res: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
        },
        "model": {"path": args.model, "sha256": sha256_file(args.model) if args.model else None, "name": model.name},
        "source": args.cifar10,
        "library_versions": library_versions(),
        "batch_size": B,
    }

    res["ceiling_img_per_s"] = ceiling(fn, B, args.reps)
    gen = [engine(model, images[: args.n], labels[: args.n], B, fn) for _ in range(args.reps)]
    res["engine"] = {k: statistics.median(g[k] for g in gen) for k in gen[0]}
    res["engine"]["efficiency"] = res["engine"]["grad_evals_per_s"] / res["ceiling_img_per_s"]

    with tempfile.TemporaryDirectory() as tmp:
        # `generate` end to end (shards written) on the same images, via a saved model + image folder-free path
        from cifar10_fgs.config import AttackConfig
        from cifar10_fgs.data import Cifar10Split
        from cifar10_fgs.generate.core import GenerateOptions, generate_dataset

        mpath = args.model
        if not mpath:
            mpath = str(Path(tmp) / "m.keras")
            model.save(mpath)
        split = Cifar10Split(images[: args.n], labels[: args.n], "bench", "test")
        t = time.perf_counter()
        r = generate_dataset(
            Path(tmp) / "ds",
            mpath,
            GenerateOptions(
                cifar10="bench", attack=AttackConfig(batch_size=B), splits=("test",), source_check=None
            ),  # a random-init model is near chance
            data={"test": split},
            allow_failures=True,
        )
        dt = time.perf_counter() - t
        res["generate"] = {
            "images": r.images_attacked,
            "seconds_total": dt,
            "seconds_attack": r.seconds,
            "img_per_s": r.images_attacked / dt,
            "grad_evals_per_s": r.gradient_evaluations / dt,
            "efficiency": r.gradient_evaluations / dt / res["ceiling_img_per_s"],
        }

    pw = paper_way(model, images[: args.paper_n], labels[: args.paper_n])
    same = engine(model, images[: args.paper_n], labels[: args.paper_n], B, fn)
    res["paper_way"] = pw
    res["speedup_over_paper_way"] = res["engine"]["img_per_s"] / pw["img_per_s"]
    res["speedup_same_images_small_n"] = same["img_per_s"] / pw["img_per_s"]

    t = time.perf_counter()
    op = list(iterate_onepixel(model, images[: args.onepixel_n], labels[: args.onepixel_n], OnePixelConfig()))
    op_dt = time.perf_counter() - t
    res["onepixel"] = {
        "images": len(op),
        "seconds_per_image": op_dt / len(op),
        "fooled": int(sum(int(r.fooled[0]) for r in op)),
        "fgs_seconds_per_image": 1.0 / res["engine"]["img_per_s"],
        "paper": {"onepixel_seconds_per_image": 12.2, "fgs_seconds_per_image": 0.089},
    }
    res["onepixel"]["ratio"] = res["onepixel"]["seconds_per_image"] / res["onepixel"]["fgs_seconds_per_image"]
    res["gaussian"] = gaussian_cost(images, args.reps)

    res["batch_sweep"] = {}
    for b in [int(v) for v in args.batch_sweep.split(",") if v]:
        fb = make_gradient_fn(model)
        e = engine(model, images[: args.n], labels[: args.n], b, fb)
        res["batch_sweep"][str(b)] = {
            "ceiling_img_per_s": ceiling(fb, b, args.reps),
            "engine_img_per_s": e["img_per_s"],
            "engine_grad_evals_per_s": e["grad_evals_per_s"],
        }
    res["scaling"] = {}
    sizes = [int(v) for v in args.scaling.split(",") if v]
    for n in sizes:
        if n > len(images):
            continue
        e = engine(model, images[:n], labels[:n], B, fn)
        res["scaling"][str(n)] = {"seconds_per_image": e["seconds"] / n, "mean_iterations": e["mean_iterations"]}

    if args.full:
        if not (args.model and args.cifar10):
            ap.error("--full needs --source-model and --cifar10")
        with tempfile.TemporaryDirectory(dir=HERE) as tmp:
            exe = [sys.executable, "-m", "cifar10_fgs.cli.main"]
            ds = str(Path(tmp) / "full")
            res["full"] = {
                "generate": run_cmd(
                    [
                        *exe,
                        "generate",
                        "--source-model",
                        args.model,
                        "--cifar10",
                        args.cifar10,
                        "--out",
                        ds,
                        "--batch-size",
                        str(B),
                        "-q",
                        "--allow-failures",
                    ]
                ),
                "validate": run_cmd([*exe, "validate", ds, "--source-model", args.model, "-q"]),
                "card": run_cmd([*exe, "card", ds]),
            }
            manifest = json.loads((Path(ds) / "generation.json").read_text())
            res["full"]["summary"] = {
                s: {k: v for k, v in m.items() if k not in ("confusion", "failures")}
                for s, m in manifest.get("summary", {}).items()
            }
            n = sum(m["num_images"] for m in manifest.get("summary", {}).values())
            res["scaling"][str(n)] = {"seconds_per_image": manifest["timing"]["last_run_seconds"] / max(1, n)}

    write_json(args.out, res)
    rows = [
        ("ceiling (raw batched input gradients)", f"{res['ceiling_img_per_s']:.0f} img/s", "", ""),
        (
            "attack engine: grad evals/s",
            f"{res['engine']['grad_evals_per_s']:.0f}",
            f"efficiency {res['engine']['efficiency']:.2f}",
            ">= 0.85",
        ),
        (
            "generate (shards on disk): grad evals/s",
            f"{res['generate']['grad_evals_per_s']:.0f}",
            f"efficiency {res['generate']['efficiency']:.2f}",
            ">= 0.85",
        ),
        (
            "engine img/s vs paper's one-at-a-time",
            f"{res['engine']['img_per_s']:.0f} vs {pw['img_per_s']:.1f}",
            f"speedup {res['speedup_over_paper_way']:.1f}x",
            ">= 20x",
        ),
        (
            "one-pixel vs FGS, s/image",
            f"{res['onepixel']['seconds_per_image']:.2f} vs {res['onepixel']['fgs_seconds_per_image']:.5f}",
            f"ratio {res['onepixel']['ratio']:.0f}x",
            "paper 12.2 vs 0.089",
        ),
        ("gaussian filter, s/image", f"{res['gaussian']['seconds_per_image']:.2e}", "", "paper < 1e-3"),
    ]
    for b, v in res["batch_sweep"].items():
        rows.append(
            (
                f"batch {b}",
                f"ceiling {v['ceiling_img_per_s']:.0f}",
                f"engine grad evals/s {v['engine_grad_evals_per_s']:.0f}",
                "",
            )
        )
    for n, v in res["scaling"].items():
        rows.append((f"{n} images", f"{v['seconds_per_image'] * 1e3:.2f} ms/image", "", ""))
    if "full" in res:
        for stage, v in res["full"].items():
            if stage != "summary":
                rows.append(
                    (
                        f"full 60k {stage}",
                        f"{v['seconds']:.0f} s",
                        f"peak RSS <= {v['peak_rss_mib_so_far']:.0f} MiB",
                        f"rc {v['returncode']}",
                    )
                )
    w = [max(len(str(r[i])) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
