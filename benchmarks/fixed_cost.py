"""The fixed cost of a small `generate`: its wall time beyond its gradient work at the model's ceiling.

    python benchmarks/fixed_cost.py --source-model SOURCE.keras --cifar10 DATA [--split test] [--limit N] [--cold]

Runs ``generate_dataset`` once, in this process, into a fresh folder (default settings, ``--allow-failures``),
then measures the ceiling (``bench.ceiling``: raw batched forward+backward at the attack's batch size, on
the gradient function generate traced). Gradient work = gradient evaluations / ceiling; fixed cost =
wall - gradient work, where wall runs from this script's first line (TensorFlow's import included) to
generate's return. The fixed cost is broken into:

  import      TensorFlow and the package
  model_load  reading the .keras file
  data        loading (decoding, or reading the decode cache) the CIFAR-10 split
  trace       the first call at the full batch size beyond a steady call (trace, graph optimisation, kernels)
  predict     the forward pass on originals: the source check's sample and a short stream's entry order
  probe       proving drain batch sizes equivalent (with the traces of those sizes)
  write       shards, manifest and summary (the shard writer runs on its own thread)
  padding     rows evaluated beyond the images' own evaluations (zero-padded batches), at the ceiling
  other       the rest: the attack loop's own Python work, waiting on the writer, ...

``--cold`` points the decode cache (``CIFAR10_FGS_CACHE``) at a new empty folder, so ``data`` decodes.
The script also runs on the layout before the package was split by stage (``cifar10_fgs.generate`` a module),
to measure the code before a change with the same instrument. Writes ``benchmarks/fixed_cost.json``.
"""

from __future__ import annotations

import time
from dataclasses import replace

T_START = time.perf_counter()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent


class Timers:
    """Seconds per stage, summed over the calls of the functions wrapped into it."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.in_probe = False

    def wrap(self, owner, name: str, stage: str, *, probe: bool = False):
        real = getattr(owner, name)

        def timed(*args, **kwargs):
            t = time.perf_counter()
            was, self.in_probe = self.in_probe, self.in_probe or probe
            try:
                return real(*args, **kwargs)
            finally:
                self.in_probe = was
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t

        setattr(owner, name, timed)


class CountingFn:
    """The gradient function generate made, timed per call: first calls per size, rows evaluated."""

    def __init__(self, fn, timers: Timers):
        self.fn, self.timers = fn, timers
        self.first: dict[int, tuple[float, bool]] = {}  # size -> (seconds, inside the probe)
        self.steady: dict[int, float] = {}
        self.rows = 0

    def __getattr__(self, name):  # replicas, first_call_seconds, call_seconds, ...
        return getattr(self.fn, name)

    def __call__(self, x, y, code=None):
        size = int(x.shape[0])
        t = time.perf_counter()
        out = self.fn(x, y, code)
        out[1].numpy()
        dt = time.perf_counter() - t
        if size not in self.first:
            self.first[size] = (dt, self.timers.in_probe)
        else:
            self.steady[size] = dt
        self.rows += size
        return out


def _package():
    """(generate module, attack module, gradient module or None) in the new or the old layout."""
    try:
        core = importlib.import_module("cifar10_fgs.generate.core")
        return (
            core,
            importlib.import_module("cifar10_fgs.attack.fgs"),
            importlib.import_module("cifar10_fgs.attack.gradient"),
        )
    except ModuleNotFoundError:
        return importlib.import_module("cifar10_fgs.generate"), importlib.import_module("cifar10_fgs.attack"), None


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source-model", required=True, type=Path)
    p.add_argument("--cifar10", required=True, help="CIFAR-10 data, as for `cifar10-fgs generate --cifar10`")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--limit", type=int, default=None, help="a seeded class-balanced subset of N images (default: all)")
    p.add_argument("--cold", action="store_true", help="an empty decode cache: the data are decoded")
    p.add_argument("--reps", type=int, default=3, help="ceiling repetitions (median)")
    p.add_argument("--json", type=Path, default=HERE / "fixed_cost.json")
    args = p.parse_args(argv)
    scratch = tempfile.TemporaryDirectory(prefix="fixed-cost-")
    if args.cold:
        os.environ["CIFAR10_FGS_CACHE"] = str(Path(scratch.name) / "cache")

    t = time.perf_counter()
    import tensorflow as tf  # noqa: F401

    core, fgs, gradient = _package()
    sys.path.insert(0, str(HERE))
    from bench import ceiling

    from cifar10_fgs.provenance import library_versions, sha256_file

    timers = Timers()
    timers.seconds["import"] = time.perf_counter() - t
    timers.wrap(core, "_load_model_info", "model_load")
    timers.wrap(core, "load_cifar10", "data")
    if hasattr(core, "load_cifar10_rows"):  # --limit: only the subset is decoded
        timers.wrap(core, "load_cifar10_rows", "data")
    if hasattr(core, "check_source_model"):  # absent before the source check existed
        timers.wrap(core, "check_source_model", "predict")
    stream = sys.modules.get("cifar10_fgs.generate.stream")  # imported with generate.core; absent before the split
    if stream is not None and hasattr(stream, "_entry_order"):
        timers.wrap(stream, "_entry_order", "predict")
    timers.wrap(getattr(core, "ShardWriter", None) or core._ShardWriter, "_write", "write")  # or: before the split
    timers.wrap(core, "_finish", "write")
    if gradient is not None:
        timers.wrap(gradient.DrainSizes, "_prove", "probe", probe=True)
    else:
        timers.wrap(fgs, "equivalent_batch_sizes", "probe", probe=True)
    made = []
    real_gradient_fn = core._gradient_fn

    def counted_gradient_fn(model, strategy):
        made.append(CountingFn(real_gradient_fn(model, strategy), timers))
        return made[-1]

    core._gradient_fn = counted_gradient_fn

    config = core.attack_config()
    out = Path(scratch.name) / "dataset"
    options = core.GenerateOptions(splits=(args.split,), limit=args.limit)
    t = time.perf_counter()
    gen = core.generate_dataset(
        out, args.source_model, replace(options, cifar10=args.cifar10, attack=config), allow_failures=True
    )
    t_end = time.perf_counter()
    wall, generate_wall = t_end - T_START, t_end - t
    shards = {p.name: sha256_file(p) for p in sorted((out / "data").glob("*.arrow"))}

    fn, B = made[0], config.batch_size
    ceil = ceiling(fn.fn, B, args.reps)
    work = gen.gradient_evaluations / ceil
    s = timers.seconds
    first_B, first_in_probe = fn.first[B]
    steady_B = fn.steady.get(B, B / ceil)
    trace = first_B - steady_B
    predict = s.get("predict", 0.0)
    if first_in_probe:  # the old probe made the first call: its trace is counted once, under trace
        s["probe"] = s.get("probe", 0.0) - trace
    padding = (fn.rows - gen.gradient_evaluations) / ceil
    fixed = wall - work
    parts = {
        "import": s["import"],
        "model_load": s.get("model_load", 0.0),
        "data": s.get("data", 0.0),
        "trace": trace,
        "predict": predict,
        "probe": s.get("probe", 0.0),
        "write": s.get("write", 0.0),
        "padding": padding,
    }
    parts["other"] = fixed - sum(parts.values())
    result = {
        "command": " ".join(["python", *sys.argv]),
        "model": {"file": args.source_model.name, "sha256": sha256_file(args.source_model)},
        "cifar10": args.cifar10,
        "split": args.split,
        "limit": args.limit,
        "cold_cache": args.cold,
        "batch_size": B,
        "images": gen.images_attacked,
        "gradient_evaluations": gen.gradient_evaluations,
        "rows_evaluated": fn.rows,
        "traced_sizes": sorted(fn.first),
        "ceiling_img_per_s": round(ceil, 1),
        "gradient_work_s": round(work, 2),
        "wall_s": round(wall, 2),
        "generate_wall_s": round(generate_wall, 2),
        "fixed_cost_s": round(fixed, 2),
        "fixed_cost_parts_s": {k: round(v, 2) for k, v in parts.items()},
        "shards_sha256": shards,
        "library_versions": library_versions(),
    }
    scratch.cleanup()
    args.json.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
