"""Gradient-evaluation efficiency of `generate` on whole splits, measured as one ratio in one run.

    python benchmarks/efficiency.py --source-model SOURCE.keras --cifar10 DATA [--limit N] [--out DIR]

Measures the ceiling (``bench.ceiling``: raw batched forward+backward, batch = the attack's), then runs
``generate_dataset`` with default settings on both splits (all 60,000 images unless ``--limit``) into a
fresh folder, then the ceiling again. Efficiency = gradient evaluations per second of attack / the mean
of the two ceilings. Writes ``benchmarks/efficiency.json`` (sorted) and prints it. Run it on an idle
machine: anything else on the cores lowers the attack's rate but not the ceilings around it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main(argv=None) -> None:
    from contextlib import nullcontext

    from bench import ceiling

    from cifar10_fgs.attack.gradient import make_gradient_fn
    from cifar10_fgs.generate.core import GenerateOptions, attack_config, generate_dataset
    from cifar10_fgs.models.inference import device_strategy
    from cifar10_fgs.models.networks import architecture, load_model
    from cifar10_fgs.provenance import library_versions, sha256_file

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source-model", dest="model", required=True, type=Path)
    p.add_argument("--cifar10", required=True, help="CIFAR-10 input, as for `cifar10-fgs generate --cifar10`")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="a seeded class-balanced subset of N images of each split (default: all)",
    )
    p.add_argument("--reps", type=int, default=3, help="ceiling repetitions (median)")
    p.add_argument("--out", type=Path, default=None, help="a new dataset folder to write (default: a temporary one)")
    p.add_argument("--json", type=Path, default=HERE / "efficiency.json")
    args = p.parse_args(argv)
    if args.out is not None and args.out.exists():  # generate would resume it and measure nothing
        p.error(f"--out {args.out} exists: name a new folder, or leave --out out for a temporary one")

    config = attack_config()  # what generate and run use by default: the device's batch size
    strategy = device_strategy()  # as generate runs it (None on a CPU or one GPU)
    with strategy.scope() if strategy is not None else nullcontext():
        model = load_model(args.model)
    fn = make_gradient_fn(model, strategy)
    before = ceiling(fn, config.batch_size, args.reps)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "dataset"
        t = time.perf_counter()
        gen = generate_dataset(out, args.model, GenerateOptions(cifar10=args.cifar10, attack=config, limit=args.limit))
        wall = time.perf_counter() - t
    after = ceiling(fn, config.batch_size, args.reps)
    expected = sum(s.num_images for s in gen.summary.values())
    if gen.images_attacked != expected or not gen.seconds:
        raise SystemExit(f"generate attacked {gen.images_attacked} of {expected} images: nothing to measure")
    rate = gen.gradient_evaluations / gen.seconds
    result = {
        "command": " ".join(["python", *sys.argv]),
        "model": {"file": args.model.name, "sha256": sha256_file(args.model), "architecture": architecture(model)},
        "source": args.cifar10,
        "limit": args.limit,
        "batch_size": config.batch_size,
        "images": gen.images_attacked,
        "fooled_percent": {s: v.fooled_percent for s, v in gen.summary.items()},
        "gradient_evaluations": gen.gradient_evaluations,
        "seconds_attack": round(gen.seconds, 2),
        "seconds_wall": round(wall, 2),
        "grad_evals_per_s": round(rate, 1),
        "ceiling_img_per_s": {"before": round(before, 1), "after": round(after, 1)},
        "efficiency": round(rate / ((before + after) / 2), 3),
        "library_versions": library_versions(),
    }
    args.json.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
