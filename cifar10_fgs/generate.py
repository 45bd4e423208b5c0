"""``generate``: attack whole CIFAR-10 splits into a publishable, resumable dataset folder.

Layout of ``DIR``::

    data/<split>-<i:05d>-of-<n:05d>.arrow   shards, visible only when complete
    generation.json                         settings, provenance, per-shard sha256, summary
    .lock                                   held (flock) while a generate runs

Shard ``i`` of a split holds the fooled rows among original rows ``[i*R, (i+1)*R)`` (R rows per
shard). Rows not fooled within ``max_iterations`` are listed by index in ``generation.json``.
Rerunning the same command resumes from the first missing shard; the result is byte-identical to
an uninterrupted run because each image's result does not depend on what it was batched with.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import logging
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .attack import AttackConfig, AttackRecord, check_attack_config, iterate_attack
from .data import SPLITS, Cifar10Split, check_split, load_cifar10
from .errors import Cifar10FgsError, ConfigError, OutputError
from .provenance import library_versions, read_json, sha256_file, write_json
from .shards import ROWS_PER_SHARD, num_shards, read_shard, record_table, shard_name, write_table_atomic
from .training import read_model_metadata

log = logging.getLogger(__name__)

MANIFEST = "generation.json"
FORMAT_VERSION = 1
LOCK = ".lock"
TMP_DIR = ".tmp"
METHODS = ("fgs", "onepixel")


class AttackFailuresError(Cifar10FgsError):
    """Some images were not fooled within max_iterations (everything else was written)."""

    exit_code = 1


@dataclass(frozen=True)
class GenerateOptions:
    splits: tuple[str, ...] = SPLITS
    limit: int | None = None  # first N rows of each split
    rows_per_shard: int = ROWS_PER_SHARD
    with_originals: bool = False
    num_workers: int = 1  # --num-shards: machines sharing the work
    worker_index: int = 0  # --shard-index: this machine's share (shards i with i % num_workers == index)
    method: str = "fgs"  # "fgs" (the paper's attack) or "onepixel" (Su et al., the slow baseline)


def default_batch_size() -> int:
    """256 on CPU (the measured knee, see benchmarks/), 1024 per GPU where TensorFlow has GPUs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return 1024 * len(gpus) if gpus else 256


def parse_splits(split: str) -> tuple[str, ...]:
    if split == "all":
        return SPLITS
    return (check_split(split),)


def check_options(opts: GenerateOptions) -> None:
    for s in opts.splits:
        check_split(s)
    if opts.limit is not None and opts.limit < 1:
        raise ConfigError(f"--limit {opts.limit} is invalid: expected a positive number of images")
    if opts.rows_per_shard < 1:
        raise ConfigError(f"rows per shard {opts.rows_per_shard} is invalid: expected >= 1")
    if opts.method not in METHODS:
        raise ConfigError(f"unknown method {opts.method!r}: expected one of {', '.join(METHODS)}")
    if opts.method == "onepixel" and opts.limit is None:
        raise ConfigError("--method onepixel takes seconds per image: pass --limit N (e.g. --limit 100)")
    if opts.num_workers < 1 or not (0 <= opts.worker_index < opts.num_workers):
        raise ConfigError(
            f"--shard-index {opts.worker_index} with --num-shards {opts.num_workers} is invalid: "
            "expected 0 <= shard-index < num-shards"
        )


@contextmanager
def folder_lock(out_dir: Path):
    """An exclusive flock on ``DIR/.lock``: released by the kernel if the holder dies, so never stale."""
    path = out_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                raise OutputError(
                    f"{out_dir} is being written by another generate (pid {holder}): wait for it or use another --out"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def _prepare_out_dir(out_dir: Path, key: dict, overwrite: bool) -> dict | None:
    """Check ``out_dir`` against the settings ``key``; return the manifest to resume, or None."""
    manifest_path = out_dir / MANIFEST
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir} is a file: expected a folder for the dataset")
    if manifest_path.exists():
        try:
            manifest = read_json(manifest_path)
        except (OSError, ValueError):
            manifest = None
        if manifest is not None and manifest.get("config") == key:
            return manifest
        if not overwrite:
            raise OutputError(
                f"{out_dir} was generated with other settings (model, data or attack): "
                "pass --overwrite to replace it, or choose another --out"
            )
        return None
    if out_dir.exists():
        ours = {"data", TMP_DIR, LOCK, "results", "figures"}
        foreign = [p.name for p in out_dir.iterdir() if p.name not in ours]
        if foreign:
            raise OutputError(
                f"{out_dir} is not empty and holds no {MANIFEST} (found {foreign[0]}): choose a new or empty --out"
            )
    return None


def _check_writable(out_dir: Path) -> None:
    probe = out_dir if out_dir.exists() else next((p for p in out_dir.parents if p.exists()), Path("."))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{probe} is not writable: choose an --out folder you can write to")


def _load_model_info(model_path: Path, unsafe: bool, strategy=None):
    from contextlib import nullcontext

    from .models import load_model

    with strategy.scope() if strategy is not None else nullcontext():
        model = load_model(model_path, unsafe=unsafe)
    meta = read_model_metadata(model_path)
    info = {
        "path": model_path.name,
        "sha256": sha256_file(model_path),
        "architecture": model.name,
        "test_accuracy": meta.get("test_accuracy"),
        "test_loss": meta.get("test_loss"),
        "recipe": meta.get("recipe"),
        "train_data": meta.get("train_data"),
        "outputs": "logits",
    }
    return model, info


PERCENTILES = (50, 90, 99)  # of the perturbation distributions reported per split and phase


def perturbation_stats(linf: np.ndarray, l2: np.ndarray, pixel_range: float) -> dict:
    """p50/p90/p99/max of L-inf (as a fraction of the range and in levels) and of L2 (fraction of the range)."""
    out = {"rows": int(len(linf))}
    if not len(linf):
        return out
    for name, values in (("linf", linf), ("l2", l2)):
        v = np.asarray(values, np.float64)
        stats = {f"p{p}": float(np.percentile(v, p)) for p in PERCENTILES} | {"max": float(v.max()), "mean": float(v.mean())}
        out[name] = stats
    out["linf_levels"] = {k: round(v * pixel_range, 2) for k, v in out["linf"].items()}
    return out


def summarize(out_dir: Path, manifest: dict, split: str) -> dict:
    """Summary statistics of one split, computed from the shards' stored columns."""
    import pyarrow as pa

    from .config import PHASES

    names = [n for n, s in sorted(manifest["shards"].items()) if s["split"] == split]
    tables = [read_shard(out_dir / n, ["label", "adversarial_prediction", "iterations", "linf", "l2", "phase"]) for n in names]
    table = pa.concat_tables(tables) if tables else None
    failures = sorted(i for n in names for i in manifest["shards"][n]["failures"])
    total = sum(manifest["shards"][n]["index_range"][1] - manifest["shards"][n]["index_range"][0] for n in names)
    if table is None or table.num_rows == 0:
        return {"num_rows": 0, "num_images": total, "failures": failures}
    it = table.column("iterations").to_numpy()
    linf = table.column("linf").to_numpy()
    l2 = table.column("l2").to_numpy()
    lab = table.column("label").to_numpy()
    adv = table.column("adversarial_prediction").to_numpy()
    phase = table.column("phase").to_numpy()
    conf = np.zeros((10, 10), np.int64)
    np.add.at(conf, (lab, adv), 1)
    hist = np.bincount(it)
    attacked = it > 0
    attack = manifest["config"]["attack"]
    pixel_range = float(attack["pixel_max"]) - float(attack["pixel_min"])
    present = [i for i, _ in enumerate(PHASES) if (phase == i).any()]
    return {
        "num_images": total,
        "num_rows": int(table.num_rows),
        "fooled_percent": round(100.0 * table.num_rows / total, 4),
        "already_misclassified": int((~attacked).sum()),
        "failures": failures,
        "iterations_histogram": {str(i): int(c) for i, c in enumerate(hist) if c},
        "mean_iterations": float(it.mean()),
        "mean_iterations_attacked": float(it[attacked].mean()) if attacked.any() else 0.0,
        "gradient_evaluations": sum(int(manifest["shards"][n]["gradient_evaluations"]) for n in names),
        "linf": {"mean": float(linf.mean()), "median": float(np.median(linf)), "max": float(linf.max())},
        "l2": {"mean": float(l2.mean()), "median": float(np.median(l2)), "max": float(l2.max())},
        "linf_attacked": {"mean": float(linf[attacked].mean()) if attacked.any() else 0.0,
                          "median": float(np.median(linf[attacked])) if attacked.any() else 0.0},
        "phases": {PHASES[i]: int((phase == i).sum()) for i in present},
        "perturbation": {"attacked": perturbation_stats(linf[attacked], l2[attacked], pixel_range)}
        | {PHASES[i]: perturbation_stats(linf[phase == i], l2[phase == i], pixel_range) for i in present},
        "confusion": conf.tolist(),
    }


@dataclass(frozen=True)
class GenerateResult:
    out_dir: str
    summary: dict
    seconds: float
    images_attacked: int
    gradient_evaluations: int
    failures: dict

    @property
    def images_per_second(self) -> float:
        return self.images_attacked / self.seconds if self.seconds else 0.0


def generate_dataset(
    model_path: str | Path,
    source: str | Path,
    out_dir: str | Path,
    config: AttackConfig = AttackConfig(),
    options: GenerateOptions = GenerateOptions(),
    *,
    overwrite: bool = False,
    allow_failures: bool = False,
    unsafe_model: bool = False,
    progress: bool = False,
    data: dict[str, Cifar10Split] | None = None,
) -> GenerateResult:
    """Attack the splits of ``source`` with the model at ``model_path`` into ``out_dir``.

    ``data`` may pass already-loaded splits (keyed by split) instead of reading ``source`` again.
    """
    check_attack_config(config)
    check_options(options)
    out_dir = Path(out_dir)
    model_path = Path(model_path)
    _check_writable(out_dir)
    from .attack import device_strategy

    strategy = device_strategy() if options.method == "fgs" else None
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if config.batch_size % replicas:
        raise ConfigError(f"batch size {config.batch_size} does not split over {replicas} GPUs: pass a multiple of {replicas}")
    model, model_info = _load_model_info(model_path, unsafe_model, strategy)

    splits: dict[str, Cifar10Split] = {}
    for split in options.splits:
        full = data[split] if data and split in data else load_cifar10(source, split)
        if options.limit is not None and options.limit > len(full):
            raise ConfigError(
                f"--limit {options.limit} is larger than the {split} split ({len(full)} images): pass --limit {len(full)} or less"
            )
        splits[split] = full.head(options.limit)

    key = {
        "format_version": FORMAT_VERSION,
        "method": options.method,
        "attack": dataclasses.asdict(config),
        "model_sha256": model_info["sha256"],
        "rows_per_shard": options.rows_per_shard,
        "replicas": replicas,  # the model ran on batch_size / replicas rows at a time (validate does the same)
        "with_originals": options.with_originals,
        "splits": {
            s: {"fingerprint": d.fingerprint(), "num_rows": len(d), "num_shards": num_shards(len(d), options.rows_per_shard)}
            for s, d in splits.items()
        },
    }
    if options.method == "onepixel":
        from .onepixel import OnePixelConfig

        key["onepixel"] = dataclasses.asdict(OnePixelConfig())
    key = _jsonable(key)
    resume = _prepare_out_dir(out_dir, key, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)

    with folder_lock(out_dir):
        resume = _prepare_out_dir(out_dir, key, overwrite)  # again, under the lock: the folder may have moved on
        if resume is None:
            _clear_outputs(out_dir)
            manifest = {
                "config": key,
                "source_model": model_info,
                "data_source": {"source": str(source), "splits": {s: d.source for s, d in splits.items()}},
                "library_versions": library_versions(),
                "worker": {"num_shards": options.num_workers, "shard_index": options.worker_index},
                "shards": {},
                "complete": False,
            }
            write_json(out_dir / MANIFEST, manifest)
        else:
            manifest = resume
            manifest["complete"] = False
            write_json(out_dir / MANIFEST, manifest)
        return _run(model, splits, out_dir, manifest, config, options, allow_failures, progress, strategy)


def _clear_outputs(out_dir: Path) -> None:
    """Remove what an earlier run with other settings left: shards, manifest, card, figures, results."""
    ours = ("data", TMP_DIR, "results", "figures") + (("README.md",) if (out_dir / MANIFEST).exists() else ())
    for stale in (*ours, MANIFEST):
        p = out_dir / stale
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _jsonable(obj):
    import json

    from .provenance import dumps_sorted

    return json.loads(dumps_sorted(obj))


def _shard_done(out_dir: Path, name: str, entry: dict | None) -> bool:
    """A shard counts as done only if its bytes hash to what the manifest recorded."""
    path = out_dir / name
    return (entry is not None and path.is_file() and path.stat().st_size == entry["bytes"]
            and sha256_file(path) == entry["sha256"])


def _run(model, splits, out_dir, manifest, config, options, allow_failures, progress, strategy=None) -> GenerateResult:
    from tqdm.auto import tqdm

    from .attack import make_gradient_fn

    rps = options.rows_per_shard
    manifest_lock = threading.Lock()
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()  # cuDNN backward passes are otherwise nondeterministic
    gradient_fn = make_gradient_fn(model, strategy)
    t_start = time.time()
    attacked = 0
    grad_evals = 0
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer")
    futures = []

    def write_shard(split: str, k: int, n: int, parts: list[AttackRecord], images: np.ndarray, seconds: float):
        rec = AttackRecord.concat(parts)
        rec = rec.take(np.argsort(rec.index, kind="stable"))
        keep = rec.fooled
        kept = rec.take(np.flatnonzero(keep))
        originals = images[kept.index - k * rps] if options.with_originals else None
        table = record_table(kept, originals)
        name = shard_name(split, k, n)
        digest, size = write_table_atomic(table, out_dir / name, out_dir / TMP_DIR)
        entry = {
            "split": split, "shard": k, "rows": int(table.num_rows), "sha256": digest, "bytes": size,
            "index_range": [k * rps, k * rps + len(rec)],
            "failures": rec.index[~keep].tolist(),
            "gradient_evaluations": int(rec.evaluations.sum()),
        }
        with manifest_lock:
            manifest["shards"][name] = entry
            manifest.setdefault("timing", {}).setdefault("shard_seconds", {})[name] = round(seconds, 3)
            write_json(out_dir / MANIFEST, manifest)
        log.info("wrote %s (%d rows)", name, table.num_rows)

    try:
        # One stream over every split's unfinished shards, so the batch drains (the tail) only once.
        # A row's stream id is (split offset + row); shards are keyed by (split, shard number).
        offsets, streams, pending, parts, shard_t0 = {}, [], {}, {}, {}
        base = 0
        for split, data in splits.items():
            offsets[split] = base
            n = num_shards(len(data), rps)
            mine = [k for k in range(n) if k % options.num_workers == options.worker_index]
            todo = [k for k in mine if not _shard_done(out_dir, shard_name(split, k, n), manifest["shards"].get(shard_name(split, k, n)))]
            if not todo:
                log.info("%s: all %d shards present, nothing to do", split, len(mine))
            for k in todo:
                rows = np.arange(k * rps, min((k + 1) * rps, len(data)))
                streams.append((split, rows))
                pending[(split, k)] = len(rows)
                parts[(split, k)] = []
            base += len(data)
        split_names = list(offsets)
        split_bases = np.array([offsets[s] for s in split_names])
        if streams:
            images = np.concatenate([splits[s].images[r] for s, r in streams])
            labels = np.concatenate([splits[s].labels[r] for s, r in streams])
            ids = np.concatenate([offsets[s] + r for s, r in streams])
            fooled_count = iter_sum = 0
            bar = tqdm(total=len(ids), desc="generate " + "+".join(sorted({s for s, _ in streams})), unit="img",
                       disable=not progress, smoothing=0.1)
            if options.method == "onepixel":
                from .onepixel import OnePixelConfig, iterate_onepixel

                records = iterate_onepixel(model, images, labels, OnePixelConfig(), indices=ids)
            else:
                records = iterate_attack(model, images, labels, config, indices=ids, gradient_fn=gradient_fn)
            for rec in records:
                which = np.searchsorted(split_bases, rec.index, side="right") - 1
                for w in np.unique(which):
                    split = split_names[int(w)]
                    data = splits[split]
                    n = num_shards(len(data), rps)
                    sub = rec.take(np.flatnonzero(which == w))
                    sub.index = sub.index - offsets[split]
                    shard_of = sub.index // rps
                    for k in np.unique(shard_of).tolist():
                        key = (split, k)
                        sel = np.flatnonzero(shard_of == k)
                        parts[key].append(sub.take(sel))
                        pending[key] -= len(sel)
                        shard_t0.setdefault(key, time.time())
                        if pending[key] == 0:
                            futures.append(writer.submit(
                                write_shard, split, k, n, parts.pop(key), data.images[k * rps:(k + 1) * rps],
                                time.time() - shard_t0[key]))
                attacked += len(rec)
                grad_evals += int(rec.evaluations.sum())
                fooled_count += int(rec.fooled.sum())
                iter_sum += int(rec.iterations.sum())
                bar.update(len(rec))
                done = max(1, bar.n)
                bar.set_postfix(fooled=f"{100.0 * fooled_count / done:.1f}%", iters=f"{iter_sum / done:.2f}",
                                refresh=False)
                for f in [f for f in futures if f.done()]:
                    f.result()  # surface writer errors (disk full, ...) early
            bar.close()
            log.info("attacked %d images in %.1fs", len(ids), time.time() - t_start)
        for f in futures:
            f.result()
    finally:
        writer.shutdown(wait=True, cancel_futures=True)  # after a failure, queued shards are not attempted

    seconds = time.time() - t_start
    manifest["summary"] = {s: summarize(out_dir, manifest, s) for s in splits}
    failures = {s: manifest["summary"][s]["failures"] for s in splits if manifest["summary"][s]["failures"]}
    all_present = all(
        _shard_done(out_dir, shard_name(s, k, num_shards(len(d), rps)), manifest["shards"].get(shard_name(s, k, num_shards(len(d), rps))))
        for s, d in splits.items() for k in range(num_shards(len(d), rps))
    )
    manifest["complete"] = all_present
    timing = manifest.setdefault("timing", {})
    if attacked:
        timing["seconds_total"] = round(timing.get("seconds_total", 0.0) + seconds, 2)
        timing["runs"] = timing.get("runs", 0) + 1
        timing.update(last_run_seconds=round(seconds, 2), last_run_images=attacked,
                      last_run_gradient_evaluations=grad_evals, last_run_batch_size=config.batch_size)
    write_json(out_dir / MANIFEST, manifest)
    shutil.rmtree(out_dir / TMP_DIR, ignore_errors=True)
    result = GenerateResult(str(out_dir), manifest["summary"], seconds, attacked, grad_evals, failures)
    if failures and not allow_failures:
        listed = "; ".join(f"{s}: {v[:10]}{' ...' if len(v) > 10 else ''}" for s, v in failures.items())
        raise AttackFailuresError(
            f"{sum(map(len, failures.values()))} images were not fooled within {config.max_iterations} iterations "
            f"({listed}): raise --max-iterations, or pass --allow-failures to accept them (listed in {MANIFEST})"
        )
    return result


def combine_workers(parts: list[str | Path], out_dir: str | Path, *, overwrite: bool = False) -> GenerateResult:
    """Merge the folders of ``generate --num-shards N --shard-index I`` runs into one dataset folder.

    All parts must come from the same settings (model, data, attack); together they must hold every
    shard. Shards are copied (fsynced, renamed into place); the manifest is rebuilt with the summary.
    """
    parts = [Path(p) for p in parts]
    out_dir = Path(out_dir)
    if not parts:
        raise ConfigError("no worker folders given: pass the folders written with --shard-index 0..N-1")
    manifests = []
    for p in parts:
        if not (p / MANIFEST).is_file():
            raise OutputError(f"{p} has no {MANIFEST}: pass folders written by `generate --num-shards N --shard-index I`")
        manifests.append(read_json(p / MANIFEST))
    key = manifests[0]["config"]
    for p, m in zip(parts, manifests):
        if m["config"] != key:
            raise ConfigError(f"{p} was generated with other settings than {parts[0]}: combine only parts of one run")
    shards: dict[str, tuple[Path, dict]] = {}
    for p, m in zip(parts, manifests):
        for name, entry in m["shards"].items():
            if not _shard_done(p, name, entry):
                raise OutputError(f"{p / name} is missing or incomplete: rerun that worker's generate to finish it")
            if name in shards and shards[name][1]["sha256"] != entry["sha256"]:
                raise ConfigError(f"{name} differs between {shards[name][0]} and {p}: the parts do not come from one run")
            shards[name] = (p, entry)
    expected = [shard_name(s, k, v["num_shards"]) for s, v in key["splits"].items() for k in range(v["num_shards"])]
    missing = [n for n in expected if n not in shards]
    if missing:
        raise OutputError(f"{len(missing)} shards are in no part (first: {missing[0]}): run the missing --shard-index")
    _prepare_out_dir(out_dir, key, overwrite)  # refuses a folder of other settings unless overwrite
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with folder_lock(out_dir):
        if _prepare_out_dir(out_dir, key, overwrite) is None:
            _clear_outputs(out_dir)
        manifest = {k: v for k, v in manifests[0].items() if k not in ("shards", "summary", "timing", "worker")}
        manifest["worker"] = {"num_shards": 1, "shard_index": 0, "combined_from": len(parts)}
        manifest["shards"] = {}
        manifest["complete"] = False
        write_json(out_dir / MANIFEST, manifest)
        for name in expected:
            src, entry = shards[name]
            dst = out_dir / name
            if not _shard_done(out_dir, name, entry) or sha256_file(dst) != entry["sha256"]:
                tmp = out_dir / TMP_DIR / (dst.name + ".partial")
                tmp.parent.mkdir(parents=True, exist_ok=True)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / name, tmp)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                if sha256_file(tmp) != entry["sha256"]:
                    tmp.unlink()
                    raise OutputError(f"{src / name} does not match its manifest sha256: rerun that worker's generate")
                os.replace(tmp, dst)
            manifest["shards"][name] = entry
        manifest["summary"] = {s: summarize(out_dir, manifest, s) for s in key["splits"]}
        manifest["complete"] = True
        manifest["timing"] = {"workers_seconds_total": round(sum(m.get("timing", {}).get("seconds_total", 0.0) for m in manifests), 2)}
        write_json(out_dir / MANIFEST, manifest)
        shutil.rmtree(out_dir / TMP_DIR, ignore_errors=True)
    failures = {s: v["failures"] for s, v in manifest["summary"].items() if v["failures"]}
    return GenerateResult(str(out_dir), manifest["summary"], time.time() - t0, 0, 0, failures)
