"""``combine``: merge the folders of several ``generate`` workers into one dataset folder."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.folder import clear_outputs, folder_lock, prepare_dataset_dir, shard_done
from cifar10_fgs.dataset.manifest import ShardEntry
from cifar10_fgs.dataset.shards import TMP_DIR, num_shards, shard_name
from cifar10_fgs.errors import ConfigError, OutputError
from cifar10_fgs.generate.core import GenerateResult, summarize
from cifar10_fgs.provenance import sha256_file


def combine_workers(dataset_dir: str | Path, parts: list[str | Path], *, overwrite: bool = False) -> GenerateResult:
    """Merge the folders of ``generate --num-workers N --worker-index I`` runs into one dataset folder.

    All parts must come from the same settings (model, data, attack); together they must hold every
    shard. Shards are copied (fsynced, renamed into place); the manifest is rebuilt with the summary.
    """
    folders = [Path(p) for p in parts]
    dataset_dir = Path(dataset_dir)
    if not folders:
        raise ConfigError("no worker folders given: pass the folders written with --worker-index 0..N-1")
    manifests = []
    for p in folders:
        if not mf.exists(p):
            raise OutputError(
                f"{p} has no {mf.FILE}: pass folders written by `generate --num-workers N --worker-index I`"
            )
        manifests.append(mf.read(p))
    key = manifests[0].config
    for p, m in zip(folders, manifests):
        if m.config.resume_key() != key.resume_key():
            raise ConfigError(f"{p} was generated with other settings than {folders[0]}: combine only parts of one run")
    shards: dict[str, tuple[Path, ShardEntry]] = {}
    for p, m in zip(folders, manifests):
        for name, entry in m.shards.items():
            if not shard_done(p, name, entry):
                raise OutputError(f"{p / name} is missing or incomplete: rerun that worker's generate to finish it")
            if name in shards and shards[name][1].sha256 != entry.sha256:
                raise ConfigError(
                    f"{name} differs between {shards[name][0]} and {p}: the parts do not come from one run"
                )
            shards[name] = (p, entry)
    counts = {s: num_shards(v.num_rows, key.rows_per_shard) for s, v in key.splits.items()}  # as generate wrote them
    expected = [shard_name(s, k, n) for s, n in counts.items() for k in range(n)]
    missing = [n for n in expected if n not in shards]
    if missing:
        raise OutputError(f"{len(missing)} shards are in no part (first: {missing[0]}): run the missing --worker-index")
    prepare_dataset_dir(dataset_dir, key, overwrite)  # refuses a folder of other settings unless overwrite
    dataset_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with folder_lock(dataset_dir):
        if prepare_dataset_dir(dataset_dir, key, overwrite) is None:
            clear_outputs(dataset_dir)
        manifest = manifests[0].replace(
            worker=mf.Worker(1, 0, len(parts)), shards={}, complete=False, summary=None, timing=mf.Timing()
        )
        mf.write(dataset_dir, manifest)
        for name in expected:
            src, entry = shards[name]
            _copy_shard(src / name, dataset_dir, name, entry)
        manifest = manifest.replace(shards={n: shards[n][1] for n in expected})
        summary = {s: summarize(dataset_dir, manifest, s) for s in key.splits}
        timing = mf.Timing(
            shard_seconds={n: t for m in manifests for n, t in m.timing.shard_seconds.items()},
            workers_seconds_total=round(sum(m.timing.seconds_total or 0.0 for m in manifests), 2),
        )
        mf.write(dataset_dir, manifest.replace(summary=summary, complete=True, timing=timing))
        shutil.rmtree(dataset_dir / TMP_DIR, ignore_errors=True)
    failures = {s: list(v.failures) for s, v in summary.items() if v.failures}
    return GenerateResult(str(dataset_dir), summary, time.time() - t0, 0, 0, failures)


def _copy_shard(src: Path, dataset_dir: Path, name: str, entry: ShardEntry) -> None:
    """Copy a worker's shard into ``dataset_dir`` (fsynced temp file, checked, renamed) unless it is there already."""
    dst = dataset_dir / name
    if shard_done(dataset_dir, name, entry):
        return
    tmp = dataset_dir / TMP_DIR / (dst.name + ".partial")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    if sha256_file(tmp) != entry.sha256:
        tmp.unlink()
        raise OutputError(f"{src} does not match its manifest sha256: rerun that worker's generate")
    os.replace(tmp, dst)
