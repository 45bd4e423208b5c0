"""The evaluation suite of the paper (sections IV-VI): transfer, adversarial retraining, Gaussian filtering.

Every evaluation reads the adversarial split back through ``datasets.load_dataset(DIR)`` and joins
each row to the original split by its ``index`` column. The original comes from
``load_cifar10(source, split)`` (``source`` defaults to the one recorded in ``generation.json``);
its first ``num_rows`` rows must have the fingerprint recorded at generation time. Rows the attack
did not fool are absent from the shards (listed as failures in ``generation.json``): evaluations
run on the joined rows, sorted by index, and report how many were used.

All numbers come from the models' **logits**: accuracy = mean(argmax == label), loss = mean
cross-entropy ``logsumexp(z) - z_label``, confidence = softmax max.

Results go to ``DIR/results/<name>.json`` (written last, sorted, atomically: settings, model
sha256s, library versions, numbers, and a ``markdown`` field holding ready tables),
``DIR/results/<name>.md`` and PNG plots beside them. A results file made with other settings is
never replaced unless ``overwrite=True``; rerunning the same settings recomputes the same numbers
and replaces them.

* ``evaluate_transfer``: the target on the original and adversarial test sets, the accuracy drop,
  the original confidence of rows whose adversarial copy fooled the target vs those it did not,
  per-class accuracy, a random-sign-noise control at the same per-image L-infinity, and the source
  model's own (white-box) numbers.
* ``evaluate_retrain``: adversarial training of the target architecture (``training.train_model``)
  on the adversarial train split (``mode="adversarial"``) or original + adversarial (``"mixed"``),
  then both test sets for both networks and the drop before and after.
* ``evaluate_gaussian``: ``scipy.ndimage.gaussian_filter`` over the spatial axes as a defence, for
  each std x model x test set, with the filter's cost per image.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import manifest as mf
from .config import GAUSSIAN_STDS, PIXEL_MAX, PIXEL_MIN, PIXEL_RANGE, PREDICT_BATCH_SIZE, RECIPES, Arch
from .data import CLASS_NAMES, NUM_CLASSES, Cifar10Split, load_cifar10
from .errors import ConfigError, DataSourceError, OutputError, ValidationError
from .inference import log_softmax
from .models import check_keras_path
from .provenance import atomic_write_bytes, dumps_sorted, library_versions, read_json, sha256_bytes, sha256_file, write_json

log = logging.getLogger(__name__)

RESULTS_DIR = "results"
MANIFEST = mf.FILE
DEFAULT_STDS: tuple[float, ...] = GAUSSIAN_STDS
DEFAULT_BATCH_SIZE = PREDICT_BATCH_SIZE  # images per inference batch (predict_logits pads the tail to this size)
BLUR_MODE = "reflect"  # scipy.ndimage default: edges mirrored (d c b a | a b c d | d c b a)
BLUR_TRUNCATE = 4.0  # scipy.ndimage default: kernel radius = round(4 * std)
BLUR_CHUNK = 4096  # images per vectorised gaussian_filter call (bounds the float32 copy to ~50 MB)
SETS = ("original", "adversarial")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


# =========================================================================== pure functions over arrays


@dataclass(frozen=True)
class Classification:
    """A model's logits on a set of images with their labels; every number derives from the logits."""

    logits: np.ndarray  # float32 (N, 10)
    labels: np.ndarray  # int64 (N,)

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def probabilities(self) -> np.ndarray:
        return np.exp(log_softmax(self.logits))

    @property
    def confidence(self) -> np.ndarray:
        """Softmax max: the probability the model gives its own prediction."""
        return self.probabilities.max(axis=1)

    @property
    def correct(self) -> np.ndarray:
        return self.predictions == self.labels

    @property
    def losses(self) -> np.ndarray:
        """Per-row cross-entropy ``-log softmax(z)[label]`` (float64)."""
        return -log_softmax(self.logits)[np.arange(len(self.labels)), self.labels]

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def loss(self) -> float:
        return float(self.losses.mean())

    @property
    def mean_confidence(self) -> float:
        return float(self.confidence.mean())

    def metrics(self) -> "SetMetrics":
        return SetMetrics(len(self.labels), self.accuracy, self.loss, self.mean_confidence)


@dataclass(frozen=True)
class SetMetrics:
    """One model on one set of images. ``loss``: mean cross-entropy; ``mean_confidence``: mean softmax max."""

    num_rows: int
    accuracy: float
    loss: float
    mean_confidence: float


def classify(model, images: np.ndarray, labels: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE) -> Classification:
    """Run ``model`` (logits out) on uint8 ``images`` through ``attack.predict_logits``."""
    from .inference import predict_logits

    labels = np.asarray(labels, np.int64)
    if len(images) != len(labels):
        raise ConfigError(f"{len(images)} images but {len(labels)} labels: expected one label per image")
    if len(labels) == 0:
        raise ConfigError("no images to classify: expected at least one row")
    return Classification(predict_logits(model, np.asarray(images), batch_size=batch_size), labels)


def per_class_accuracy(correct: np.ndarray, labels: np.ndarray) -> list[float | None]:
    """Accuracy within each true class 0..9 (None for a class with no rows)."""
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    hits = np.bincount(labels, weights=correct.astype(np.float64), minlength=NUM_CLASSES)
    return [float(h / c) if c else None for h, c in zip(hits, counts)]


CONFIDENCE_GROUPS = {
    "fooled": "the target is correct on the original and wrong on its adversarial copy",
    "held": "the target is correct on the original and on its adversarial copy",
    "recovered": "the target is wrong on the original and correct on its adversarial copy",
    "both_wrong": "the target is wrong on the original and on its adversarial copy",
}


def confidence_split(original: Classification, adversarial: Classification) -> dict[str, dict]:
    """Partition the rows by (target correct on original, on adversarial) and average confidences.

    For each group (see ``CONFIDENCE_GROUPS``): ``rows``, ``mean_original_confidence`` (softmax max
    of the target's logits on the original image; for ``fooled`` and ``held`` this is the
    probability of the true class) and ``mean_adversarial_confidence`` (softmax max on the
    adversarial copy); None for an empty group. The paper's 0.398 / 0.761 are ``fooled`` / ``held``.
    """
    oc, ac = original.correct, adversarial.correct
    o_conf, a_conf = original.confidence, adversarial.confidence
    masks = {"fooled": oc & ~ac, "held": oc & ac, "recovered": ~oc & ac, "both_wrong": ~oc & ~ac}
    out = {}
    for name, m in masks.items():
        n = int(m.sum())
        out[name] = {
            "rows": n,
            "mean_original_confidence": float(o_conf[m].mean()) if n else None,
            "mean_adversarial_confidence": float(a_conf[m].mean()) if n else None,
        }
    return out


def linf_levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image L-infinity distance in pixel levels (0-255) between two uint8 batches."""
    d = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).reshape(len(a), -1)
    return d.max(axis=1, initial=0).astype(np.int64)


def random_sign_control(images: np.ndarray, linf: np.ndarray, seed: int = 0, keys: np.ndarray | None = None) -> np.ndarray:
    """Each image plus random +-1 signs times its own ``linf`` (pixel levels), rounded and clipped to uint8.

    ``linf`` (N,) is rounded to whole levels first (a uint8 image can only move by whole levels), so
    every pixel moves by exactly ``+-round(linf)`` unless clipping at 0 or 255 stops it: the
    per-image L-infinity is ``round(linf)`` except where clipping removes every full-size move.
    Signs come from ``numpy.random.default_rng([seed, key])`` per image, ``keys`` defaulting to
    ``arange(N)`` (pass the original row index so an image's noise does not depend on the others).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ConfigError(f"images have dtype {images.dtype} and shape {images.shape}: expected uint8 (N, H, W, C)")
    linf = np.asarray(linf, np.float64).reshape(-1)
    if linf.shape[0] != len(images):
        raise ConfigError(f"{len(linf)} L-infinity values for {len(images)} images: expected one per image")
    if not np.all(np.isfinite(linf)) or np.any(linf < 0) or np.any(linf > PIXEL_RANGE):
        raise ConfigError(f"L-infinity values must lie in [0, {PIXEL_RANGE:g}] pixel levels: got {linf.min()}..{linf.max()}")
    keys = np.arange(len(images)) if keys is None else np.asarray(keys).reshape(-1)
    if keys.shape[0] != len(images):
        raise ConfigError(f"{len(keys)} keys for {len(images)} images: expected one per image")
    levels = np.rint(linf).astype(np.int16)
    out = np.empty_like(images)
    for i in range(len(images)):
        rng = np.random.default_rng([int(seed), int(keys[i])])
        sign = rng.integers(0, 2, size=images.shape[1:], dtype=np.int16) * 2 - 1
        out[i] = np.clip(images[i].astype(np.int16) + levels[i] * sign, PIXEL_MIN, PIXEL_MAX).astype(np.uint8)
    return out


def check_stds(stds: Sequence[float]) -> tuple[float, ...]:
    stds = tuple(float(s) for s in stds)
    if not stds:
        raise ConfigError("no --std values: expected a comma-separated list such as 0,0.5,1")
    bad = [s for s in stds if not math.isfinite(s) or s < 0]
    if bad:
        raise ConfigError(f"--std {bad[0]} is invalid: expected standard deviations >= 0 (in pixels)")
    if len(set(stds)) != len(stds):
        raise ConfigError(f"--std lists a value twice ({', '.join(map(str, stds))}): list each std once")
    return stds


def gaussian_blur(images: np.ndarray, std: float) -> np.ndarray:
    """Gaussian filter over the two spatial axes of a uint8 (N, H, W, C) batch, back to uint8.

    ``scipy.ndimage.gaussian_filter(x, sigma=(0, std, std, 0), mode="reflect", truncate=4.0)`` on
    the whole batch at once (in float32 chunks of ``BLUR_CHUNK`` images): no mixing across images
    or channels. The result is rounded to the nearest level (half to even) and clipped to [0, 255],
    so the defended image is again a valid uint8 image, as every image the models see; ``std=0``
    is the identity.
    """
    from scipy.ndimage import gaussian_filter

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ConfigError(f"images have dtype {images.dtype} and shape {images.shape}: expected uint8 (N, H, W, C)")
    std = check_stds([std])[0]
    out = np.empty_like(images)
    for i in range(0, len(images), BLUR_CHUNK):
        x = images[i:i + BLUR_CHUNK].astype(np.float32)
        y = gaussian_filter(x, sigma=(0.0, std, std, 0.0), mode=BLUR_MODE, truncate=BLUR_TRUNCATE)
        out[i:i + BLUR_CHUNK] = np.clip(np.rint(y), PIXEL_MIN, PIXEL_MAX).astype(np.uint8)
    return out


# =========================================================================== the dataset folder, joined to the original


@dataclass(frozen=True)
class JoinedSplit:
    """Adversarial rows of one split joined to the original split by ``index`` (sorted by index)."""

    split: str
    index: np.ndarray  # int64 rows of the original split, ascending
    labels: np.ndarray  # int64
    original: np.ndarray  # uint8 (N, 32, 32, 3): the original images at ``index``
    adversarial: np.ndarray  # uint8 (N, 32, 32, 3)
    columns: dict  # stored per-row columns (iterations, linf, original/adversarial_prediction), aligned
    num_rows_split: int  # rows the generation covered (config.splits[split].num_rows)
    failures: tuple[int, ...]  # indices absent because the attack did not fool the source on them
    original_split: Cifar10Split  # the first num_rows rows of the original split (all of them)

    def __len__(self) -> int:
        return int(self.index.shape[0])


def read_manifest(dataset_dir: str | Path) -> mf.Manifest:
    try:
        return mf.read(dataset_dir)
    except mf.ManifestError as exc:
        raise DataSourceError(f"{exc}") from None


def dataset_identity(dataset_dir: Path, manifest: mf.Manifest, splits: Sequence[str]) -> dict:
    """What identifies the adversarial data an evaluation used (hashes from the manifest)."""
    config = manifest.config.to_json()
    return {
        "dir": str(dataset_dir),
        "config_sha256": sha256_bytes(dumps_sorted(config).encode()),
        "source_model_sha256": manifest.config.model_sha256,
        "attack": config["attack"],
        "splits": {s: config["splits"][s] for s in splits},
        "shards_sha256": {n: e.sha256 for n, e in sorted(manifest.shards.items()) if e.split in splits},
    }


def _check_split_generated(dataset_dir: Path, manifest: mf.Manifest, split: str) -> mf.SplitConfig:
    spec = manifest.split_config(split, dataset_dir)
    have = len(manifest.shards_of(split))
    if have != spec.num_shards:
        raise ValidationError(
            f"{dataset_dir}/{MANIFEST} lists {have} of {spec.num_shards} {split} shards: finish the generation "
            "(rerun the same generate command) before evaluating"
        )
    return spec


def _datasets_progress(enabled: bool):
    from .data import datasets_progress

    return datasets_progress(enabled)


def load_adversarial(dataset_dir: str | Path, *, cache_dir: str | None = None, progress: bool = False):
    """``datasets.load_dataset(DIR)`` (plain, not streaming) with a one-line error if it fails."""
    import datasets

    try:
        with _datasets_progress(progress):
            return datasets.load_dataset(str(dataset_dir), cache_dir=cache_dir)
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot read this folder"
        raise DataSourceError(
            f"datasets.load_dataset cannot read {dataset_dir} ({type(exc).__name__}: {exc}): "
            "run `cifar10-fgs validate` on it or generate it again"
        ) from None


def load_original(source: str | Path, split: str, manifest: mf.Manifest) -> Cifar10Split:
    """The first ``num_rows`` rows of the original split, checked against the generation fingerprint."""
    return manifest.check_source(split, load_cifar10(source, split))


def join_split(dsd, dataset_dir: Path, manifest: mf.Manifest, split: str, original: Cifar10Split) -> JoinedSplit:
    """Join the rows of ``dsd[split]`` (a loaded DatasetDict) to ``original`` by ``index``, with checks."""
    import datasets

    from .shards import decode_images

    cfg = _check_split_generated(dataset_dir, manifest, split)
    n = cfg.num_rows
    if split not in dsd:
        raise ValidationError(
            f"datasets.load_dataset({dataset_dir}) finds no {split!r} split although {MANIFEST} lists it: "
            "run `cifar10-fgs validate` on the folder"
        )
    ds = dsd[split]
    cols = ["image", "index", "label", "linf", "iterations", "original_prediction", "adversarial_prediction"]
    missing = [c for c in cols if c not in ds.column_names]
    if missing:
        raise ValidationError(f"the {split} split of {dataset_dir} lacks column {missing[0]!r}: generate the folder again")
    ds = ds.select_columns(cols).cast_column("image", datasets.Image(decode=False))
    table = ds.with_format("arrow")[:]
    index = table.column("index").to_numpy().astype(np.int64)
    failures = manifest.failures(split)
    values, counts = np.unique(index, return_counts=True)
    if (counts > 1).any():
        dup = int(values[counts > 1][0])
        raise ValidationError(f"index {dup} appears twice in the {split} split of {dataset_dir}: generate the folder again")
    expected = np.setdiff1d(np.arange(n), np.asarray(failures, np.int64))
    if len(index) != len(expected) or not np.array_equal(np.sort(index), expected):
        extra = np.setdiff1d(index, expected)
        lost = np.setdiff1d(expected, index)
        what = f"row index {int(extra[0])} is not expected" if extra.size else f"row index {int(lost[0])} is missing"
        raise ValidationError(
            f"the {split} split of {dataset_dir} does not match {MANIFEST} ({what}; {len(index)} rows, "
            f"{len(expected)} expected): run `cifar10-fgs validate` and regenerate the folder"
        )
    if len(index) == 0:
        raise ValidationError(f"the {split} split of {dataset_dir} holds no rows (every image failed): nothing to evaluate")
    order = np.argsort(index, kind="stable")
    index = index[order]
    labels = table.column("label").to_numpy().astype(np.int64)[order]
    if not np.array_equal(labels, original.labels[index]):
        bad = int(index[np.flatnonzero(labels != original.labels[index])[0]])
        raise ValidationError(
            f"the label of {split} row index {bad} in {dataset_dir} differs from the original's: "
            "the shards were altered; regenerate the folder"
        )
    cells = table.column("image").to_pylist()
    adversarial = decode_images([cells[i] for i in order])
    orig_images = original.images[index]
    columns = {c: table.column(c).to_numpy()[order] for c in ("linf", "iterations", "original_prediction", "adversarial_prediction")}
    measured = linf_levels(adversarial, orig_images) / PIXEL_RANGE
    off = np.abs(measured - columns["linf"].astype(np.float64)) > 1e-4
    if off.any():
        bad = int(index[np.flatnonzero(off)[0]])
        raise ValidationError(
            f"{split} row index {bad} of {dataset_dir}: the stored linf does not match the image's distance "
            "to its original: the shards were altered; regenerate the folder"
        )
    return JoinedSplit(split, index, labels, orig_images, adversarial, columns, n, failures, original)


def load_joined(
    dataset_dir: str | Path,
    splits: Sequence[str],
    source: str | Path | None = None,
    *,
    cache_dir: str | None = None,
    progress: bool = False,
) -> tuple[dict[str, JoinedSplit], mf.Manifest, str]:
    """Load ``splits`` of the folder and join them to ``source``: (joined by split, manifest, source used)."""
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir)
    for s in splits:
        _check_split_generated(dataset_dir, manifest, s)
    source = str(source) if source is not None else _recorded_source(dataset_dir, manifest)
    originals = {s: load_original(source, s, manifest) for s in splits}
    dsd = load_adversarial(dataset_dir, cache_dir=cache_dir, progress=progress)
    joined = {s: join_split(dsd, dataset_dir, manifest, s, originals[s]) for s in splits}
    for s, j in joined.items():
        log.info("%s: joined %d adversarial rows to %d original rows (%d failures absent)",
                 s, len(j), j.num_rows_split, len(j.failures))
    return joined, manifest, source


def _recorded_source(dataset_dir: Path, manifest: mf.Manifest) -> str:
    src = manifest.data_source.source
    if not src:
        raise DataSourceError(f"{dataset_dir}/{MANIFEST} records no data source: pass --source DATA (the original CIFAR-10)")
    return str(src)


# =========================================================================== results files


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ConfigError(f"results name {name!r} is invalid: use letters, digits, '_', '.' or '-' (e.g. transfer)")
    return name


def results_paths(dataset_dir: str | Path, name: str) -> tuple[Path, Path]:
    base = Path(dataset_dir) / RESULTS_DIR
    return base / f"{name}.json", base / f"{name}.md"


def _settings_key(kind: str, settings: dict, models: dict, dataset: dict) -> str:
    key = {"kind": kind, "settings": settings, "models": {k: v.get("sha256") for k, v in models.items()},
           "dataset": dataset["config_sha256"]}
    return sha256_bytes(dumps_sorted(key).encode())


def _claim_results(dataset_dir: Path, name: str, key: str, overwrite: bool) -> None:
    """Refuse to replace results made with other settings (same settings: recomputed and replaced)."""
    json_path, md_path = results_paths(dataset_dir, name)
    if not (dataset_dir / RESULTS_DIR).exists():
        _check_writable(dataset_dir)
    elif not os.access(dataset_dir / RESULTS_DIR, os.W_OK | os.X_OK):
        raise OutputError(f"{dataset_dir / RESULTS_DIR} is not writable: make it writable or copy the dataset folder")
    if overwrite or not json_path.exists():
        return
    try:
        previous = read_json(json_path).get("settings_sha256")
    except (OSError, ValueError, AttributeError):
        previous = None
    if previous != key:
        raise OutputError(
            f"{json_path} holds results made with other settings (models, data or options): pass --overwrite "
            "to replace them, or --name NAME to keep both"
        )


def _check_writable(dataset_dir: Path) -> None:
    if not os.access(dataset_dir, os.W_OK | os.X_OK):
        raise OutputError(f"{dataset_dir} is not writable: results go to {dataset_dir / RESULTS_DIR}; copy the folder first")


def _model_info(path: str | Path, unsafe: bool):
    from .models import load_model

    model = load_model(path, unsafe=unsafe)
    return model, {"path": str(path), "file": Path(path).name, "sha256": sha256_file(path), "architecture": model.name}


def _save_figure(fig, path: Path) -> None:
    from .figures import save_png

    save_png(fig, path, dpi=120, bbox_inches="tight")


def _write_results(dataset_dir: Path, name: str, report: dict, figures: dict[str, object], title: str) -> tuple[str, str, tuple[str, ...]]:
    """Write the PNGs, then ``<name>.md``, then ``<name>.json`` (last: its presence means complete)."""
    json_path, md_path = results_paths(dataset_dir, name)
    plots = []
    for fname, fig in figures.items():
        _save_figure(fig, dataset_dir / RESULTS_DIR / fname)
        plots.append(f"{RESULTS_DIR}/{fname}")
    report["plots"] = plots
    report["title"] = title  # the dataset card uses it as the section heading
    images = "".join(f"\n![{Path(p).stem}]({Path(p).name})\n" for p in plots)
    atomic_write_bytes(md_path, f"# {title}\n\n{report['markdown']}{images}".encode())
    write_json(json_path, report)
    log.info("wrote %s", json_path)
    return str(json_path), str(md_path), tuple(plots)


def _base_report(kind: str, name: str, key: str, settings: dict, models: dict, dataset: dict, source: str,
                 joined: dict) -> dict:
    """The common part of every results JSON; ``key`` is the settings key claimed before the run."""
    return {
        "kind": kind,
        "name": name,
        "settings": settings,
        "settings_sha256": key,
        "models": models,
        "dataset": dataset,
        "data_source": {"source": source, "fingerprints": {s: j.original_split.fingerprint() for s, j in joined.items()}},
        "rows": {s: {"num_rows_split": j.num_rows_split, "num_rows_used": len(j), "failures_absent": len(j.failures)}
                 for s, j in joined.items()},
        "library_versions": library_versions(),
        "metric_definitions": {
            "accuracy": "mean over rows of argmax(logits) == label",
            "loss": "mean over rows of the cross-entropy logsumexp(logits) - logits[label]",
            "mean_confidence": "mean over rows of max(softmax(logits))",
            "accuracy_drop": "accuracy on the original images minus accuracy on their adversarial copies (same rows)",
        },
    }


def _progress_bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=not progress, leave=False)


def _f(x, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _md_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _rows_note(j: JoinedSplit) -> str:
    note = f"{len(j)} of {j.num_rows_split} {j.split} rows"
    if j.failures:
        note += f" ({len(j.failures)} rows the attack did not fool are absent from the dataset and excluded)"
    return note


# =========================================================================== transfer (paper section IV)


@dataclass(frozen=True)
class TransferResult:
    name: str
    json_path: str
    markdown_path: str
    plots: tuple[str, ...]
    split: str
    num_rows_used: int
    num_rows_split: int
    original: SetMetrics
    adversarial: SetMetrics
    control: SetMetrics
    accuracy_drop: float
    control_accuracy_drop: float
    confidence: dict  # confidence_split() of the target
    report: dict  # everything written to json_path


def evaluate_transfer(
    model_path: str | Path,
    dataset_dir: str | Path,
    source: str | Path | None = None,
    *,
    source_model_path: str | Path | None = None,
    split: str = "test",
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    name: str = "transfer",
    overwrite: bool = False,
    unsafe_model: bool = False,
    progress: bool = False,
    cache_dir: str | None = None,
) -> TransferResult:
    """The target model on the original split and its adversarial copy (paper section IV).

    Also: per-class accuracy, a random-sign control (each original plus random +-1 signs at the
    same per-image L-infinity as its adversarial copy, seeded by ``seed`` and the row index), and
    the source model's white-box numbers when ``source_model_path`` is given.
    """
    t0 = time.time()
    dataset_dir = Path(dataset_dir)
    check_name(name)
    _check_batch_size(batch_size)
    manifest = read_manifest(dataset_dir)
    _check_split_generated(dataset_dir, manifest, split)
    target, target_info = _model_info(model_path, unsafe_model)
    models = {"target": target_info}
    source_model = None
    if source_model_path is not None:
        source_model, info = _model_info(source_model_path, unsafe_model)
        info["generated_the_dataset"] = info["sha256"] == manifest.config.model_sha256
        models["source"] = info
    settings = {"split": split, "control_seed": seed, "batch_size": batch_size}
    dataset = dataset_identity(dataset_dir, manifest, [split])
    key = _settings_key("transfer", settings, models, dataset)
    _claim_results(dataset_dir, name, key, overwrite)

    joined, manifest, source = load_joined(dataset_dir, [split], source, cache_dir=cache_dir, progress=progress)
    j = joined[split]
    bar = _progress_bar(3 + (3 if source_model is not None else 0) + (1 if j.failures else 0), f"transfer {split}", progress)
    linf = linf_levels(j.adversarial, j.original)
    control_images = random_sign_control(j.original, linf, seed, keys=j.index)
    sets = {"original": j.original, "adversarial": j.adversarial, "random_sign_control": control_images}
    tgt = {}
    for set_name, images in sets.items():
        tgt[set_name] = classify(target, images, j.labels, batch_size)
        bar.update(1)
    full = tgt["original"].metrics()
    if j.failures:
        full = classify(target, j.original_split.images, j.original_split.labels, batch_size).metrics()
        bar.update(1)
    src = {}
    if source_model is not None:
        for set_name, images in sets.items():
            src[set_name] = classify(source_model, images, j.labels, batch_size)
            bar.update(1)
    bar.close()

    m = {k: c.metrics() for k, c in tgt.items()}
    drop = m["original"].accuracy - m["adversarial"].accuracy
    control_drop = m["original"].accuracy - m["random_sign_control"].accuracy
    conf = confidence_split(tgt["original"], tgt["adversarial"])
    correct_first = conf["fooled"]["rows"] + conf["held"]["rows"]
    class_acc = {k: per_class_accuracy(tgt[k].correct, j.labels) for k in sets}
    class_rows = np.bincount(j.labels, minlength=NUM_CLASSES)
    per_class = {
        CLASS_NAMES[c]: {"rows": int(class_rows[c]), **{k: class_acc[k][c] for k in sets}} for c in range(NUM_CLASSES)
    }
    results = {
        "target": {
            **{k: dataclasses.asdict(v) for k, v in m.items()},
            "original_all_rows": dataclasses.asdict(full),
            "accuracy_drop": drop,
            "loss_increase": m["adversarial"].loss - m["original"].loss,
            "random_sign_control_accuracy_drop": control_drop,
            "drop_beyond_random_noise": drop - control_drop,
            "confidence": conf,
            "fooling_rate": conf["fooled"]["rows"] / correct_first if correct_first else None,
            "per_class_accuracy": per_class,
        },
        "perturbation": {
            "linf_levels_mean": float(linf.mean()), "linf_levels_median": float(np.median(linf)),
            "linf_levels_max": int(linf.max()), "unchanged_rows": int((linf == 0).sum()),
        },
    }
    if src:
        sm = {k: c.metrics() for k, c in src.items()}
        results["source"] = {
            **{k: dataclasses.asdict(v) for k, v in sm.items()},
            "accuracy_drop": sm["original"].accuracy - sm["adversarial"].accuracy,
            "random_sign_control_accuracy_drop": sm["original"].accuracy - sm["random_sign_control"].accuracy,
            "agrees_with_stored_adversarial_prediction": float(
                (src["adversarial"].predictions == j.columns["adversarial_prediction"]).mean()),
        }
    report = _base_report("transfer", name, key, settings, models, dataset, source, joined)
    report["definitions"] = {
        "sets": {
            "original": "the original images at the joined rows",
            "adversarial": "their adversarial copies from the dataset",
            "random_sign_control": "each original plus random +-1 signs times its adversarial copy's L-infinity "
                                   "(pixel levels), clipped to [0, 255]; signs from numpy default_rng([control_seed, index])",
            "original_all_rows": "the original images of every generated row, including rows absent from the dataset",
        },
        "confidence": {
            **{g: f"rows where {d}" for g, d in CONFIDENCE_GROUPS.items()},
            "mean_original_confidence": "mean softmax max of the target's logits on the original image",
            "mean_adversarial_confidence": "mean softmax max of the target's logits on the adversarial copy",
            "fooling_rate": "fooled / (fooled + held): of the originals the target gets right, the share whose adversarial copy it gets wrong",
        },
    }
    report["results"] = results
    report["seconds"] = round(time.time() - t0, 2)
    report["markdown"] = _transfer_markdown(report, j)
    figures = {f"{name}_per_class.png": _per_class_figure(per_class, split),
               f"{name}_confidence.png": _confidence_figure(tgt["original"], tgt["adversarial"])}
    json_path, md_path, plots = _write_results(dataset_dir, name, report, figures, "Transfer to the target model")
    return TransferResult(
        name, json_path, md_path, plots, split, len(j), j.num_rows_split, m["original"], m["adversarial"],
        m["random_sign_control"], drop, control_drop, conf, report,
    )


def _check_batch_size(batch_size: int) -> None:
    if int(batch_size) != batch_size or batch_size < 1:
        raise ConfigError(f"batch size {batch_size} is invalid: expected an integer >= 1")


def _transfer_markdown(report: dict, j: JoinedSplit) -> str:
    r = report["results"]["target"]
    tfile = report["models"]["target"]["file"]
    sets = ("original", "adversarial", "random_sign_control")
    out = [f"Target model `{tfile}` on {_rows_note(j)}. The random-sign control adds random ±1 noise "
           "at the same per-image L∞ as each adversarial copy.\n\n"]
    out.append(_md_table(
        ("", "Original set", "Adversarial set", "Random-sign control"),
        [("Accuracy", *(_f(r[s]["accuracy"]) for s in sets)),
         ("Loss", *(_f(r[s]["loss"]) for s in sets)),
         ("Mean confidence", *(_f(r[s]["mean_confidence"]) for s in sets)),
         ("Accuracy drop", "—", _f(r["accuracy_drop"]), _f(r["random_sign_control_accuracy_drop"]))],
    ))
    c = r["confidence"]
    labels = {"fooled": "Fooled (correct → wrong)", "held": "Held (correct → correct)",
              "recovered": "Recovered (wrong → correct)", "both_wrong": "Both wrong"}
    out.append("\nMean confidence (softmax max) of the target's classification of the *original* image, by what its "
               "adversarial copy did to the target:\n\n")
    out.append(_md_table(("Rows (target on original → on adversarial)", "Rows", "Mean original confidence"),
                         [(labels[g], c[g]["rows"], _f(c[g]["mean_original_confidence"])) for g in labels]))
    pc = r["per_class_accuracy"]
    out.append("\nPer-class accuracy of the target:\n\n")
    out.append(_md_table(("Class", "Rows", "Original", "Adversarial", "Random-sign control"),
                         [(k, v["rows"], *(_f(v[s]) for s in sets)) for k, v in pc.items()]))
    if "source" in report["results"]:
        s = report["results"]["source"]
        sinfo = report["models"]["source"]
        note = "" if sinfo.get("generated_the_dataset") else " (not the model that generated the dataset)"
        out.append(f"\nSource model `{sinfo['file']}`{note}, white-box:\n\n")
        out.append(_md_table(("", "Original set", "Adversarial set", "Random-sign control"),
                             [("Accuracy", *(_f(s[x]["accuracy"]) for x in sets)),
                              ("Loss", *(_f(s[x]["loss"]) for x in sets))]))
    return "".join(out)


def _per_class_figure(per_class: dict, split: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot()
    x = np.arange(NUM_CLASSES)
    for k, (key, label) in enumerate((("original", "original"), ("adversarial", "adversarial"),
                                      ("random_sign_control", "random-sign control"))):
        vals = [np.nan if v[key] is None else v[key] for v in per_class.values()]
        ax.bar(x + (k - 1) * 0.27, vals, 0.27, label=label)
    ax.set_xticks(x, list(per_class), rotation=30)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"Target per-class accuracy ({split} split)")
    ax.legend(fontsize=8)
    return fig


def _confidence_figure(orig: Classification, adv: Classification):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    oc, ac = orig.correct, adv.correct
    conf = orig.confidence
    bins = np.linspace(0, 1, 21)
    for mask, label in ((oc & ~ac, "fooled (correct → wrong)"), (oc & ac, "held (correct → correct)")):
        if mask.any():
            ax.hist(conf[mask], bins=bins, alpha=0.6, density=True, label=f"{label}, n={int(mask.sum())}")
    ax.set_xlabel("target confidence on the original image (softmax max)")
    ax.set_ylabel("density")
    ax.set_title("Original confidence vs transfer success")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "the target gets no original right", ha="center", transform=ax.transAxes)
    return fig


# =========================================================================== adversarial retraining (paper section V)


RETRAIN_MODES = ("adversarial", "mixed")


@dataclass(frozen=True)
class RetrainResult:
    name: str
    json_path: str
    markdown_path: str
    plots: tuple[str, ...]
    model_path: str
    mode: str
    epochs: int
    trained: bool  # False if an identical earlier retraining at model_path was reused
    train_seconds: float  # total training time recorded for the model (all resumed runs)
    retrained_original: SetMetrics
    retrained_adversarial: SetMetrics
    drop_after: float
    target_original: SetMetrics | None
    target_adversarial: SetMetrics | None
    drop_before: float | None
    report: dict


def retrain_split(train: JoinedSplit, mode: str, where: str = "the dataset") -> Cifar10Split:
    """The training data of ``mode``: the adversarial rows, or every original row followed by them."""
    if mode == "adversarial":
        return Cifar10Split(train.adversarial, train.labels, f"adversarial train split of {where}", "train")
    if mode == "mixed":
        return Cifar10Split(np.concatenate([train.original_split.images, train.adversarial]),
                            np.concatenate([train.original_split.labels, train.labels]),
                            f"original + adversarial train split of {where}", "train")
    raise ConfigError(f"mode {mode!r} is invalid: expected one of {', '.join(RETRAIN_MODES)}")


def device_description() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = []
        for g in gpus:
            try:
                names.append(tf.config.experimental.get_device_details(g).get("device_name") or g.name)
            except Exception:  # noqa: BLE001 - details are best effort
                names.append(g.name)
        return ", ".join(names)
    return f"CPU ({os.cpu_count()} logical cores)"


def evaluate_retrain(
    dataset_dir: str | Path,
    out: str | Path,
    source: str | Path | None = None,
    *,
    mode: str = "adversarial",
    epochs: int | None = None,
    target_model_path: str | Path | None = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    name: str | None = None,
    overwrite: bool = False,
    unsafe_model: bool = False,
    progress: bool = False,
    cache_dir: str | None = None,
) -> RetrainResult:
    """Adversarial training of the target architecture, then both test sets for both networks (section V).

    ``mode="adversarial"`` trains on the adversarial train rows (the paper); ``"mixed"`` on the
    original train split plus the adversarial rows. Labels are the original labels. The recipe is
    ``config.TARGET_RECIPE`` (``epochs`` overrides its epochs); ``training.train_model`` saves the
    model to ``out`` with its own metadata and resumes after an interruption. If ``out`` already
    holds a model trained by the same recipe, seed and data, it is reused instead of retrained.
    """
    from .training import read_model_metadata, train_model, trained_model_matches

    t0 = time.time()
    dataset_dir = Path(dataset_dir)
    out = Path(out)
    if mode not in RETRAIN_MODES:
        raise ConfigError(f"mode {mode!r} is invalid: expected one of {', '.join(RETRAIN_MODES)}")
    if epochs is not None and (int(epochs) != epochs or epochs < 1):
        raise ConfigError(f"--epochs {epochs} is invalid: expected an integer >= 1")
    check_keras_path(out)
    name = check_name(name or ("retrain" if mode == "adversarial" else f"retrain_{mode}"))
    _check_batch_size(batch_size)
    manifest = read_manifest(dataset_dir)
    for s in ("train", "test"):
        _check_split_generated(dataset_dir, manifest, s)
    recipe = RECIPES[Arch.TARGET].with_epochs(epochs)
    models = {}
    target = None
    if target_model_path is not None:
        target, models["target"] = _model_info(target_model_path, unsafe_model)
    settings = {"mode": mode, "recipe": dataclasses.asdict(recipe), "seed": seed, "batch_size": batch_size,
                "out": out.name}
    dataset = dataset_identity(dataset_dir, manifest, ["train", "test"])
    key = _settings_key("retrain", settings, models, dataset)  # before training: the retrained model is an output
    _claim_results(dataset_dir, name, key, overwrite)

    joined, manifest, source = load_joined(dataset_dir, ["train", "test"], source, cache_dir=cache_dir, progress=progress)
    tr, te = joined["train"], joined["test"]
    train = retrain_split(tr, mode, str(dataset_dir))
    test = Cifar10Split(te.original, te.labels, f"{source} (test rows of {dataset_dir})", "test")

    meta = read_model_metadata(out) if out.exists() else {}
    reusable = trained_model_matches(out, train, recipe, seed)  # even with overwrite: it is the same model
    if reusable:
        log.info("reusing %s: trained earlier with the same recipe, seed and data", out)
    else:
        log.info("training %s on %d images (%s, %d epochs)", out, len(train), mode, recipe.epochs)
        train_model(train, test, out, arch=Arch.TARGET, recipe=recipe, seed=seed, overwrite=overwrite,
                    verbose=1 if progress else 0)
        meta = read_model_metadata(out)
    retrained, models["retrained"] = _model_info(out, unsafe_model)
    train_seconds = float(meta.get("train_seconds_total") or 0.0)

    bar = _progress_bar(2 + (2 if target is not None else 0), "retrain evaluation", progress)
    res = {}
    for role, model in (("retrained", retrained), ("target", target)):
        if model is None:
            continue
        res[role] = {}
        for set_name, images in (("original", te.original), ("adversarial", te.adversarial)):
            res[role][set_name] = classify(model, images, te.labels, batch_size).metrics()
            bar.update(1)
    bar.close()
    drop_after = res["retrained"]["original"].accuracy - res["retrained"]["adversarial"].accuracy
    drop_before = (res["target"]["original"].accuracy - res["target"]["adversarial"].accuracy) if target is not None else None
    results = {
        role: {**{k: dataclasses.asdict(v) for k, v in r.items()},
               "accuracy_drop": r["original"].accuracy - r["adversarial"].accuracy}
        for role, r in res.items()
    }
    results["accuracy_drop_before"] = drop_before
    results["accuracy_drop_after"] = drop_after
    results["training"] = {
        "mode": mode, "epochs": recipe.epochs, "train_images": len(train), "seconds": train_seconds,
        "minutes": round(train_seconds / 60.0, 2), "device": device_description(), "reused_existing_model": reusable,
        "model_metadata": str(out.with_suffix(".json")), "train_data_fingerprint": train.fingerprint(),
        "history": meta.get("history", []),
    }
    report = _base_report("retrain", name, key, settings, models, dataset, source, joined)
    report["definitions"] = {
        "modes": {"adversarial": "trained on the adversarial train rows with their original labels",
                  "mixed": "trained on every original train image plus the adversarial train rows"},
        "sets": {"original": "original test images at the joined rows", "adversarial": "their adversarial copies"},
        "accuracy_drop_before": "target (original network): accuracy on original minus on adversarial",
        "accuracy_drop_after": "retrained network: accuracy on original minus on adversarial",
        "training.seconds": "wall time of model.fit summed over epochs (all resumed runs), from the model's metadata",
    }
    report["results"] = results
    report["seconds"] = round(time.time() - t0, 2)
    report["markdown"] = _retrain_markdown(report, te)
    figures = {f"{name}.png": _retrain_figure(results)}
    json_path, md_path, plots = _write_results(dataset_dir, name, report, figures, "Adversarial retraining of the target")
    tgt = res.get("target", {})
    return RetrainResult(
        name, json_path, md_path, plots, str(out), mode, recipe.epochs, not reusable, train_seconds,
        res["retrained"]["original"], res["retrained"]["adversarial"], drop_after,
        tgt.get("original"), tgt.get("adversarial"), drop_before, report,
    )



def _retrain_markdown(report: dict, te: JoinedSplit) -> str:
    r = report["results"]
    t = r["training"]
    rows = []
    if "target" in r:
        rows.append((f"Original target `{report['models']['target']['file']}`",
                     *(f"{_f(r['target'][s]['accuracy'])} ({_f(r['target'][s]['loss'])})" for s in SETS),
                     _f(r["target"]["accuracy_drop"])))
    rows.append((f"Retrained `{report['models']['retrained']['file']}` ({t['mode']}, {t['epochs']} epochs)",
                 *(f"{_f(r['retrained'][s]['accuracy'])} ({_f(r['retrained'][s]['loss'])})" for s in SETS),
                 _f(r["retrained"]["accuracy_drop"])))
    out = [f"Test set: {_rows_note(te)}. Cells: accuracy (loss).\n\n"]
    out.append(_md_table(("Network", "Original set", "Adversarial set", "Accuracy drop"), rows))
    if "target" not in r:
        out.append("\nPass `--target-model` to compare with the original target network.\n")
    out.append(f"\nRetraining: {t['train_images']} images, {t['epochs']} epochs, "
               f"{t['minutes']:.1f} min on {t['device']}.\n")
    return "".join(out)


def _retrain_figure(results: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    roles = [r for r in ("target", "retrained") if r in results]
    x = np.arange(len(roles))
    for k, s in enumerate(SETS):
        vals = [results[r][s]["accuracy"] for r in roles]
        bars = ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, label=f"{s} test set")
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(x, ["original target" if r == "target" else "retrained" for r in roles])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title("Adversarial retraining")
    ax.legend(fontsize=8, loc="lower right")
    return fig


# =========================================================================== Gaussian filtering (paper section VI)


@dataclass(frozen=True)
class GaussianRow:
    model: str
    set: str
    std: float
    metrics: SetMetrics


@dataclass(frozen=True)
class GaussianResult:
    name: str
    json_path: str
    markdown_path: str
    plots: tuple[str, ...]
    split: str
    stds: tuple[float, ...]
    models: tuple[str, ...]
    rows: tuple[GaussianRow, ...]
    ms_per_image_batched: dict  # str(std) -> ms per image, whole set filtered at once
    ms_per_image_single: dict  # str(std) -> median ms for one image per call
    report: dict

    def accuracy(self, model: str, set_name: str, std: float) -> float:
        return next(r.metrics.accuracy for r in self.rows if (r.model, r.set, r.std) == (model, set_name, std))


def model_labels(paths: Sequence[str | Path]) -> list[str]:
    """Short names for models: file stems, made unique with a suffix when two share a stem."""
    labels = []
    for p in paths:
        stem = Path(p).stem
        label, k = stem, 2
        while label in labels:
            label, k = f"{stem}-{k}", k + 1
        labels.append(label)
    return labels


def time_blur_single(images: np.ndarray, std: float, repeats: int = 100) -> float:
    """Median seconds of ``gaussian_blur`` on one image per call (over up to ``repeats`` images)."""
    times = []
    for i in range(min(repeats, len(images))):
        t = time.perf_counter()
        gaussian_blur(images[i:i + 1], std)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def evaluate_gaussian(
    model_paths: Sequence[str | Path],
    dataset_dir: str | Path,
    source: str | Path | None = None,
    *,
    stds: Sequence[float] = DEFAULT_STDS,
    split: str = "test",
    batch_size: int = DEFAULT_BATCH_SIZE,
    name: str = "gaussian",
    overwrite: bool = False,
    unsafe_model: bool = False,
    progress: bool = False,
    cache_dir: str | None = None,
) -> GaussianResult:
    """Accuracy of each model on both sets after ``gaussian_blur`` at each std (paper section VI)."""
    t0 = time.time()
    dataset_dir = Path(dataset_dir)
    check_name(name)
    _check_batch_size(batch_size)
    stds = check_stds(stds)
    model_paths = list(model_paths)
    if not model_paths:
        raise ConfigError("no models given: pass --models TARGET.keras[,RETRAINED.keras]")
    manifest = read_manifest(dataset_dir)
    _check_split_generated(dataset_dir, manifest, split)
    labels = model_labels(model_paths)
    loaded = [_model_info(p, unsafe_model) for p in model_paths]
    models = {lab: info for lab, (_, info) in zip(labels, loaded)}
    settings = {"split": split, "stds": list(stds), "batch_size": batch_size, "models": labels,
                "filter": {"function": "scipy.ndimage.gaussian_filter", "sigma": "(0, std, std, 0) on (N, H, W, C)",
                           "mode": BLUR_MODE, "truncate": BLUR_TRUNCATE, "output": "rounded half to even, clipped to uint8"}}
    dataset = dataset_identity(dataset_dir, manifest, [split])
    key = _settings_key("gaussian", settings, models, dataset)
    _claim_results(dataset_dir, name, key, overwrite)

    joined, manifest, source = load_joined(dataset_dir, [split], source, cache_dir=cache_dir, progress=progress)
    j = joined[split]
    sets = {"original": j.original, "adversarial": j.adversarial}
    bar = _progress_bar(len(stds) * len(sets) * (1 + len(loaded)), f"gaussian {split}", progress)
    rows: list[GaussianRow] = []
    batch_seconds: dict[str, float] = {}
    gaussian_blur(j.adversarial[:1], 1.0)  # warm-up (imports scipy.ndimage) outside the timings
    for std in stds:
        for set_name, images in sets.items():
            t = time.perf_counter()
            blurred = gaussian_blur(images, std)
            batch_seconds[str(std)] = batch_seconds.get(str(std), 0.0) + time.perf_counter() - t
            bar.update(1)
            for label, (model, _) in zip(labels, loaded):
                rows.append(GaussianRow(label, set_name, std, classify(model, blurred, j.labels, batch_size).metrics()))
                bar.update(1)
    bar.close()
    n_filtered = len(sets) * len(j)
    ms_batched = {k: 1000.0 * v / n_filtered for k, v in batch_seconds.items()}
    ms_single = {str(s): 1000.0 * time_blur_single(j.adversarial, s) for s in stds}

    base = {(r.model, r.set): r.metrics.accuracy for r in rows if r.std == stds[0]}
    table = [
        {"model": r.model, "set": r.set, "std": r.std, **dataclasses.asdict(r.metrics),
         "accuracy_change_vs_first_std": r.metrics.accuracy - base[(r.model, r.set)]}
        for r in rows
    ]
    report = _base_report("gaussian", name, key, settings, models, dataset, source, joined)
    report["definitions"] = {
        "std": "standard deviation of the Gaussian kernel in pixels, applied along height and width only",
        "sets": {"original": "original test images at the joined rows", "adversarial": "their adversarial copies"},
        "ms_per_image_batched": "filter wall time over the whole set (vectorised, incl. rounding) / images",
        "ms_per_image_single": "median wall time of the filter called on one image at a time",
        "accuracy_change_vs_first_std": f"accuracy minus accuracy at std={stds[0]:g} for the same model and set",
    }
    report["results"] = {"table": table, "ms_per_image_batched": ms_batched, "ms_per_image_single": ms_single}
    report["seconds"] = round(time.time() - t0, 2)
    report["markdown"] = _gaussian_markdown(rows, stds, labels, ms_batched, ms_single, j)
    figures = {f"{name}.png": _gaussian_figure(rows, stds, labels, split)}
    json_path, md_path, plots = _write_results(dataset_dir, name, report, figures, "Gaussian filtering as a defence")
    return GaussianResult(name, json_path, md_path, plots, split, stds, tuple(labels), tuple(rows),
                          ms_batched, ms_single, report)


def _std_label(std: float) -> str:
    return "No filter" if std == 0 else f"std={std:g}"


def _gaussian_markdown(rows, stds, labels, ms_batched, ms_single, j: JoinedSplit) -> str:
    acc = {(r.model, r.set, r.std): r.metrics.accuracy for r in rows}
    headers = ("Filter", *(f"`{m}` / {s}" for m in labels for s in SETS))
    body = [(_std_label(std), *(_f(acc[(m, s, std)]) for m in labels for s in SETS)) for std in stds]
    positive = [s for s in stds if s > 0]
    worst_b = max((ms_batched[str(s)] for s in positive), default=0.0)
    worst_s = max((ms_single[str(s)] for s in positive), default=0.0)
    return (
        f"Accuracy after `scipy.ndimage.gaussian_filter` over height and width (rounded to uint8) on {_rows_note(j)}.\n\n"
        + _md_table(headers, body)
        + f"\nFilter cost per image: at most {worst_b:.4f} ms when the whole set is filtered at once, "
          f"at most {worst_s:.4f} ms for one image per call.\n"
    )


def _gaussian_figure(rows, stds, labels, split: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4))
    ax = fig.add_subplot()
    styles = {"original": "-", "adversarial": "--"}
    colors = [f"C{i}" for i in range(10)]
    for mi, m in enumerate(labels):
        for s in SETS:
            ys = [next(r.metrics.accuracy for r in rows if (r.model, r.set, r.std) == (m, s, std)) for std in stds]
            ax.plot(stds, ys, styles[s], marker="o", color=colors[mi % 10], label=f"{m} / {s}")
    ax.set_xticks(stds, [f"{s:g}" for s in stds], fontsize=8)
    ax.set_xlabel("Gaussian filter std (pixels; 0 = no filter)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Gaussian filtering ({split} split)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
