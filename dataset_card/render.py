"""Everything a dataset card says, computed from ``generation.json`` and the Arrow shards.

The YAML header (``configs``, ``dataset_info`` with features, split sizes and byte counts) is
generated from the shards themselves: features from each shard's schema metadata, row counts from
its record batches, ``num_bytes`` as ``datasets`` counts it (Arrow buffer bytes), ``download_size``
from the file sizes. Statistics read only the small numeric columns (never the images). The body
is the Jinja template ``template.md.j2`` beside this file; the output is a pure function of the
folder's contents (no clock, no absolute paths), so the same folder always gives the same card.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TEMPLATE_NAME = "template.md.j2"
MARKER = "<!-- written by `cifar10-fgs card`"
STAT_COLUMNS = (
    "index", "label", "original_prediction", "original_confidence", "adversarial_prediction",
    "adversarial_confidence", "iterations", "linf", "l2", "phase",
)
SPLIT_ORDER = ("train", "test")
HUB_SOURCE = "uoft-cs/cifar10"

FIELD_DESCRIPTIONS = {
    "image": "The adversarial image: 32x32 RGB, lossless PNG, exactly the uint8 pixels the source model misclassifies.",
    "label": "The true CIFAR-10 class of the original image.",
    "index": "Row of the original image in the source split (in the source's own order): joins back to the original.",
    "original_prediction": "The source model's prediction on the original image.",
    "original_confidence": "Softmax probability of `original_prediction` on the original image.",
    "adversarial_prediction": "The source model's prediction on the adversarial image (never equal to `label`).",
    "adversarial_confidence": "Softmax probability of `adversarial_prediction` on the adversarial image.",
    "iterations": "Steps on the path that fooled the image (for `restart`, including the steps its random start stands "
                  "for), so linf <= 0.01 * iterations; 0 means the model already misclassified the original, stored "
                  "unchanged.",
    "phase": "How the image was fooled (ClassLabel): `unchanged` (already misclassified), `fgs` (the paper's sign "
             "steps), `runner_up` (margin against the current runner-up, after the paper's path stalled), "
             "`targeted` (margin toward the original's 2nd/3rd runner-up class), `restart` (a seeded random start "
             "inside the L-inf ball reached so far, then runner-up steps). Every path starts at the original.",
    "linf": "L-infinity norm of (adversarial - original), as a fraction of the pixel range [0, 255].",
    "l2": "L2 norm of (adversarial - original) over all 3072 values, as a fraction of the pixel range.",
    "original_image": "The original CIFAR-10 image (PNG), as read from the source.",
}

METHOD_FIELD_DESCRIPTIONS = {
    "onepixel": {
        "iterations": "Differential-evolution generations run (0 if the initial population already fooled the model, "
                      "or the original was already misclassified).",
    },
}

ARCHITECTURES = {
    "efficientnetb0_cifar10": "EfficientNetB0",
    "efficientnetb0": "EfficientNetB0",
    "simple_deep_cnn": "simple deep CNN (Keras example, the paper's Fig. 2)",
}

# Iteration histogram bins for the table: single values up to 5, then widening ranges.
_BIN_EDGES = (0, 1, 2, 3, 4, 5, 6, 11, 21, 51, 101, 201, 501, 1001, 2001, 5001, 10001)


# --------------------------------------------------------------------------- layout (YAML)


@dataclass(frozen=True)
class SplitLayout:
    name: str
    files: tuple[str, ...]  # paths relative to the dataset folder, sorted
    rows: tuple[int, ...]  # rows per file
    num_examples: int
    num_bytes: int  # Arrow buffer bytes, as ``datasets`` counts them
    file_bytes: int  # bytes on disk

    @property
    def pattern(self) -> str:
        return f"data/{self.name}-*.arrow"


@dataclass(frozen=True)
class Layout:
    features: Any  # datasets.Features
    splits: dict[str, SplitLayout]

    @property
    def num_examples(self) -> int:
        return sum(s.num_examples for s in self.splits.values())

    @property
    def download_size(self) -> int:
        return sum(s.file_bytes for s in self.splits.values())

    @property
    def dataset_size(self) -> int:
        return sum(s.num_bytes for s in self.splits.values())


def ordered_splits(names) -> list[str]:
    names = list(names)
    return [s for s in SPLIT_ORDER if s in names] + sorted(s for s in names if s not in SPLIT_ORDER)


def read_layout(dataset_dir: Path, manifest: dict) -> Layout:
    """Features, rows and bytes of every shard listed in ``manifest``, read from the files' Arrow streams."""
    import datasets
    import pyarrow as pa

    from cifar10_fgs.errors import ValidationError

    by_split: dict[str, list[str]] = {}
    for name, entry in manifest["shards"].items():
        by_split.setdefault(entry["split"], []).append(name)
    features = None
    splits = {}
    for split in ordered_splits(by_split):
        files = tuple(sorted(by_split[split]))
        rows, num_bytes, file_bytes = [], 0, 0
        for name in files:
            path = dataset_dir / name
            with pa.memory_map(str(path), "r") as source:
                reader = pa.ipc.open_stream(source)
                n = 0
                for batch in reader:
                    n += batch.num_rows
                    num_bytes += batch.nbytes
                schema = reader.schema
            feats = datasets.Features.from_arrow_schema(schema)
            if features is None:
                features = feats
            elif feats != features:
                raise ValidationError(
                    f"{name} has other features than the first shard: regenerate the folder with one `cifar10-fgs generate` setting"
                )
            rows.append(n)
            file_bytes += path.stat().st_size
        splits[split] = SplitLayout(split, files, tuple(rows), sum(rows), num_bytes, file_bytes)
    if features is None:
        raise ValidationError(f"{dataset_dir} lists no shards in generation.json: run `cifar10-fgs generate` first")
    return Layout(features, splits)


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def attack_method(manifest: dict) -> str:
    """``fgs`` (the paper's attack; manifests from before the one-pixel baseline have no ``method``) or ``onepixel``."""
    return str(manifest.get("config", {}).get("method") or "fgs")


METHOD_NAMES = {"fgs": "iterative fast gradient sign", "onepixel": "one-pixel attack"}


def method_name(manifest: dict) -> str:
    m = attack_method(manifest)
    return METHOD_NAMES.get(m, m)


def architecture_name(manifest: dict) -> str:
    arch = str(manifest.get("source_model", {}).get("architecture") or "unknown model")
    return ARCHITECTURES.get(arch, arch)


def pretty_name(manifest: dict) -> str:
    return f"Adversarial CIFAR-10 ({method_name(manifest)} on {architecture_name(manifest).split(' (')[0]})"


def build_card_data(manifest: dict, layout: Layout):
    """The card's YAML metadata as a ``DatasetCardData``; ``dataset_info`` is serialised by ``datasets`` itself."""
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from huggingface_hub import DatasetCardData

    arch = str(manifest.get("source_model", {}).get("architecture") or "")
    tags = ["adversarial", "adversarial-examples", "adversarial-robustness", "cifar10"]
    if attack_method(manifest) == "onepixel":
        tags += ["one-pixel-attack"]
    else:
        tags += ["fgsm", "fast-gradient-sign"]
    if "efficientnet" in arch.lower():
        tags.append("efficientnet")
    data = DatasetCardData(
        pretty_name=pretty_name(manifest),
        license="unknown",
        task_categories=["image-classification"],
        task_ids=["multi-class-image-classification"],
        size_categories=[size_category(layout.num_examples)],
        source_datasets=[HUB_SOURCE],
        tags=tags,
        configs=[{
            "config_name": "default",
            "data_files": [{"split": s.name, "path": s.pattern} for s in layout.splits.values()],
        }],
    )
    split_dict = SplitDict()
    for s in layout.splits.values():
        split_dict.add(SplitInfo(name=s.name, num_bytes=s.num_bytes, num_examples=s.num_examples))
    info = DatasetInfo(
        features=layout.features, splits=split_dict, download_size=layout.download_size,
        dataset_size=layout.dataset_size,
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    return data


# --------------------------------------------------------------------------- statistics


def read_columns(dataset_dir: Path, split: SplitLayout, columns=STAT_COLUMNS):
    """The named columns of every shard of ``split``, concatenated in shard order (images never read)."""
    import pyarrow as pa

    from cifar10_fgs.shards import read_shard

    return pa.concat_tables([read_shard(dataset_dir / name, list(columns)) for name in split.files])


def _norm_stats(x: np.ndarray) -> dict:
    if len(x) == 0:
        return {"mean": 0.0, "median": 0.0, "max": 0.0}
    x = x.astype(np.float64)
    return {"mean": float(x.mean()), "median": float(np.median(x)), "max": float(x.max())}


def histogram_bins(iterations: np.ndarray, max_iterations: int) -> list[tuple[str, int]]:
    top = max(int(iterations.max(initial=0)), 0)
    out = []
    edges = [e for e in _BIN_EDGES if e <= max(top, 5)] + [max(top, 5) + 1]
    edges = sorted(set(edges))
    for lo, hi in zip(edges[:-1], edges[1:]):
        label = str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}"
        out.append((label, int(((iterations >= lo) & (iterations < hi)).sum())))
    return out


def split_statistics(table, manifest: dict, split: str) -> dict:
    """Statistics of one split from its stored columns and the manifest (attacked images, failures)."""
    cfg = manifest["config"]
    num_images = int(cfg["splits"][split]["num_rows"])
    failures = sorted(i for e in manifest["shards"].values() if e["split"] == split for i in e.get("failures", []))
    it = table.column("iterations").to_numpy().astype(np.int64)
    lab = table.column("label").to_numpy().astype(np.int64)
    opred = table.column("original_prediction").to_numpy().astype(np.int64)
    adv = table.column("adversarial_prediction").to_numpy().astype(np.int64)
    linf = table.column("linf").to_numpy()
    l2 = table.column("l2").to_numpy()
    oconf = table.column("original_confidence").to_numpy()
    aconf = table.column("adversarial_confidence").to_numpy()
    attacked = opred == lab  # the model was right on the original: the attack had to change it
    already = int((~attacked).sum())
    originally_right = num_images - already
    conf = np.zeros((10, 10), np.int64)
    if len(lab):
        np.add.at(conf, (lab, adv), 1)
    return {
        "split": split,
        "num_images": num_images,
        "num_rows": int(table.num_rows),
        "already_misclassified": already,
        "fooled_by_attack": int(attacked.sum()),
        "not_fooled": len(failures),
        "failures": failures,
        "stored_percent": 100.0 * table.num_rows / num_images if num_images else 0.0,
        "attack_success_percent": 100.0 * attacked.sum() / originally_right if originally_right else 0.0,
        "source_accuracy": originally_right / num_images if num_images else 0.0,
        "mean_iterations_attacked": float(it[attacked].mean()) if attacked.any() else 0.0,
        "median_iterations_attacked": float(np.median(it[attacked])) if attacked.any() else 0.0,
        "max_iterations_used": int(it.max(initial=0)),
        "iterations": it,
        "histogram": histogram_bins(it, int(cfg["attack"]["max_iterations"])),
        "linf_all": _norm_stats(linf),
        "l2_all": _norm_stats(l2),
        "linf_attacked": _norm_stats(linf[attacked]),
        "l2_attacked": _norm_stats(l2[attacked]),
        "original_confidence_attacked": float(oconf[attacked].mean()) if attacked.any() else 0.0,
        "adversarial_confidence_attacked": float(aconf[attacked].mean()) if attacked.any() else 0.0,
        "confusion": conf,
    }


# --------------------------------------------------------------------------- evaluation results


@dataclass(frozen=True)
class ResultSection:
    name: str  # file name under results/
    title: str
    markdown: str | None = None
    numbers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    note: str | None = None


def _fmt_number(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def read_results(dataset_dir: Path) -> list[ResultSection]:
    """Sections for ``results/*.json``: its ``markdown`` field verbatim, else its top-level numbers."""
    folder = dataset_dir / "results"
    if not folder.is_dir():
        return []
    sections = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue
        title = path.stem.replace("_", " ").replace("-", " ").capitalize()
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("results/%s is not readable JSON (%s): left out of the card", path.name, type(exc).__name__)
            sections.append(ResultSection(path.name, title, note="This file is not valid JSON and is left out."))
            continue
        if not isinstance(obj, dict):
            sections.append(ResultSection(path.name, title, note="This file holds no JSON object and is left out."))
            continue
        if isinstance(obj.get("title"), str) and obj["title"].strip():
            title = obj["title"].strip()
        markdown = obj.get("markdown")
        if isinstance(markdown, str) and markdown.strip():
            sections.append(ResultSection(path.name, title, markdown=markdown.strip()))
            continue
        numbers = tuple(
            (k, _fmt_number(v)) for k, v in sorted(obj.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        )
        note = None if numbers else "No top-level numbers to show; see the file."
        sections.append(ResultSection(path.name, title, numbers=numbers, note=note))
    return sections


# --------------------------------------------------------------------------- markdown helpers


def md_escape(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(headers, rows, align=None) -> str:
    headers = [md_escape(h) for h in headers]
    align = align or ["---"] * len(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(md_escape(c) for c in r) + " |")
    return "\n".join(lines)


def feature_type(feature) -> str:
    import datasets

    if isinstance(feature, datasets.Image):
        return "Image (PNG bytes)"
    if isinstance(feature, datasets.ClassLabel):
        return f"ClassLabel ({feature.num_classes} classes)"
    if isinstance(feature, datasets.Value):
        return feature.dtype
    return type(feature).__name__


def _pct(x: float) -> str:
    return f"{x:.2f}%"


def _f(x: float, d: int = 4) -> str:
    return f"{x:.{d}f}"


# --------------------------------------------------------------------------- context and rendering


def _limitations(manifest: dict, stats: dict[str, dict]) -> list[str]:
    out = []
    src = str(manifest.get("data_source", {}).get("source", ""))
    low = src.lower()
    if any(t in low for t in ("jpeg", "jpg")):
        out.append(
            "The source images were read from a JPEG re-encoding of CIFAR-10, not the original batches: "
            "their pixels are close to, but not the same as, the canonical CIFAR-10 pixels, and the "
            "`index` column follows that copy's order. Join back to the originals only with the same source."
        )
    else:
        out.append(
            f"The `index` column is the row in the source split as read from `{Path(src).name or src}` (in that "
            "source's order); join back to the originals only with the same source."
        )
    acc = manifest.get("source_model", {}).get("test_accuracy")
    if isinstance(acc, (int, float)) and acc < 0.9:
        out.append(
            f"The source model reaches only {acc:.4f} test accuracy, so many images were already misclassified "
            "and are stored unchanged. Filter on `original_prediction == label` for images the attack "
            "actually changed."
        )
    elif any(s["already_misclassified"] for s in stats.values()):
        out.append(
            "Images the source model already misclassified are stored unchanged; filter on "
            "`original_prediction == label` for images the attack actually changed."
        )
    out.append(
        "The perturbations are made against one model (white-box). They transfer only weakly to other "
        "architectures: the seed paper measured a 2.57-point accuracy drop on a simple deep CNN. Accuracy "
        "on this set measures robustness to this specific attack on this specific model, not adversarial "
        "robustness in general."
    )
    fails = sum(s["not_fooled"] for s in stats.values())
    if fails:
        out.append(
            f"{fails} images were not fooled within the attack's budget and "
            "are absent (their indices are listed in `generation.json`), so the splits are not complete."
        )
    from cifar10_fgs.data import CLASS_NAMES

    for s, st in stats.items():
        present = [CLASS_NAMES[i] for i in range(10) if st["confusion"][i].sum()]
        if len(present) < 10:
            out.append(
                f"The {s} split holds only {len(present)} of the 10 classes ({', '.join(present) or 'none'}): "
                "it is not a class-balanced sample of CIFAR-10 (e.g. the first rows of a source sorted by class)."
            )
    partial = [s for s, st in stats.items() if st["num_images"] < _FULL.get(s, st["num_images"])]
    if partial:
        out.append(
            "Only the first " + ", ".join(f"{stats[s]['num_images']} {s}" for s in partial)
            + " images were attacked (a `--limit` run), not whole CIFAR-10 splits."
        )
    out.append(
        "Every image is stored as the exact uint8 pixels the attack produced (lossless PNG). Re-encoding "
        "(JPEG, resizing) or a different preprocessing may undo the perturbation."
    )
    return out


_FULL = {"train": 50_000, "test": 10_000}


def build_context(
    dataset_dir: Path,
    manifest: dict,
    layout: Layout,
    stats: dict[str, dict],
    results: list[ResultSection],
    figures: dict[str, str],
    notes: list[str],
    repo_id: str | None,
) -> dict:
    from cifar10_fgs.data import CLASS_NAMES
    from cifar10_fgs.upload import shipped_model_paths

    cfg = manifest["config"]
    attack = cfg["attack"]
    model = manifest.get("source_model", {})
    pixel_range = float(attack["pixel_max"]) - float(attack["pixel_min"])
    step_levels = float(attack["step"]) * pixel_range
    split_names = list(layout.splits)

    load_path = repo_id or f"path/to/{dataset_dir.resolve().name}"
    method = attack_method(manifest)
    descriptions = {**FIELD_DESCRIPTIONS, **(METHOD_FIELD_DESCRIPTIONS.get(method, {}))}
    fields = [
        (f"`{name}`", feature_type(feat), descriptions.get(name, ""))
        for name, feat in layout.features.items()
    ]

    if method == "onepixel":
        settings = cfg.get("onepixel")
        attack_rows = [
            ("attack", "one-pixel attack (Su, Vargas and Sakurai 2019): differential evolution over one pixel "
                       "(row, column, r, g, b) minimising the probability of the true class"),
            ("settings", ", ".join(f"{k} {v}" for k, v in sorted(settings.items())) if isinstance(settings, dict)
             else "not recorded in generation.json (the cifar10-fgs defaults of the generating version)"),
            ("stop rule", "per image, as soon as a candidate image is misclassified"),
            ("`iterations`", "differential-evolution generations run"),
        ]
        how = (
            "Each image is attacked by differential evolution over a single pixel: candidates set one pixel to "
            "any colour, and the search stops at the first candidate the source model misclassifies. Images the "
            "model already misclassifies are stored unchanged; images never fooled are left out. This is the "
            "paper's slow baseline, far more expensive per image than the gradient attack."
        )
    else:
        attack_rows = []
        how = (
            "Each image starts at its original pixels. At every iteration the uint8 image is classified by the "
            "source model; if it is misclassified the image is stored, otherwise it moves one step of "
            f"{attack['step']} × (pixel range) = {step_levels:g} levels in the direction of the sign of the loss "
            "gradient with respect to the input, and is clipped to the pixel range. Images still correctly "
            f"classified after {attack['max_iterations']} iterations count as not fooled and are left out. The "
            "stored image is exactly the uint8 image the model misclassified."
        )
    attack_rows = attack_rows or [
        ("attack", "untargeted iterative fast gradient sign (Goodfellow et al. 2014), one sign step per iteration"),
        ("step", f"{attack['step']} of the pixel range = {step_levels:g} levels per iteration"),
        ("max iterations", str(attack["max_iterations"])),
        ("pixel range", f"[{attack['pixel_min']:g}, {attack['pixel_max']:g}] (uint8 levels, clipped every step)"),
        ("loss", "logsumexp of the other logits minus the true logit (same gradient sign as cross-entropy)"),
        ("stop rule", "per image, as soon as the rounded uint8 image is misclassified"),
        ("batch size", str(attack.get("batch_size", ""))),
    ]
    recipe = model.get("recipe") or {}
    model_rows = [
        ("architecture", f"{architecture_name(manifest)} (`{model.get('architecture', 'unknown')}`)"),
        ("file", f"`{model.get('path', 'unknown')}`"),
        ("sha256", f"`{model.get('sha256', 'unknown')}`"),
        ("outputs", str(model.get("outputs", "logits"))),
        ("test accuracy", _f(model["test_accuracy"]) if isinstance(model.get("test_accuracy"), (int, float)) else "not recorded"),
        ("test loss", _f(model["test_loss"]) if isinstance(model.get("test_loss"), (int, float)) else "not recorded"),
    ]
    train_data = model.get("train_data") or {}
    if train_data:
        model_rows.append((
            "training data",
            f"{train_data.get('num_images', '?')} images from `{Path(str(train_data.get('source', '?'))).name}`",
        ))
    recipe_rows = [(k, json.dumps(v) if isinstance(v, (dict, list)) or v is None else str(v)) for k, v in sorted(recipe.items())]

    src = manifest.get("data_source", {})
    data_rows = [
        (s, str(cfg["splits"][s]["num_rows"]), str(cfg["splits"][s].get("num_shards", "")),
         f"`{cfg['splits'][s].get('fingerprint', '')}`")
        for s in ordered_splits(cfg["splits"])
    ]
    shard_rows = []
    for s in layout.splits.values():
        for name, rows in zip(s.files, s.rows):
            e = manifest["shards"][name]
            shard_rows.append((f"`{name}`", str(rows), str(e["bytes"]), f"`{e['sha256']}`"))
    versions = manifest.get("library_versions", {})
    attack_seconds = sum(float(e.get("attack_seconds", 0.0)) for e in manifest["shards"].values())

    overview_rows = [
        (s, str(st["num_images"]), str(st["num_rows"]), str(st["already_misclassified"]), str(st["fooled_by_attack"]),
         str(st["not_fooled"]), _pct(st["stored_percent"]), _pct(st["attack_success_percent"]),
         _f(st["mean_iterations_attacked"], 2), str(st["max_iterations_used"]))
        for s, st in stats.items()
    ]
    norm_rows = []
    for s, st in stats.items():
        for which, n in (("all rows", st["num_rows"]), ("attacked rows", st["fooled_by_attack"])):
            key = "all" if which == "all rows" else "attacked"
            li, l2 = st[f"linf_{key}"], st[f"l2_{key}"]
            norm_rows.append((
                s, f"{which} ({n})", _f(li["mean"]), _f(li["median"]), f"{_f(li['max'])} ({li['max'] * pixel_range:.0f} levels)",
                _f(l2["mean"]), _f(l2["median"]), _f(l2["max"]),
            ))
    phase_rows = []
    for s in stats:
        summ = (manifest.get("summary") or {}).get(s) or {}
        for phase, count in (summ.get("phases") or {}).items():
            p = (summ.get("perturbation") or {}).get(phase) or {}
            li, lv, l2 = p.get("linf") or {}, p.get("linf_levels") or {}, p.get("l2") or {}
            phase_rows.append((s, f"`{phase}`", str(count), *(
                f"{_f(li[k])} ({lv[k]:g})" if k in li else "-" for k in ("p50", "p90", "p99", "max")),
                _f(l2["p50"]) if l2 else "-", _f(l2["max"]) if l2 else "-"))
    conf_rows = [
        (s, _f(st["original_confidence_attacked"]), _f(st["adversarial_confidence_attacked"]), _f(st["source_accuracy"]))
        for s, st in stats.items()
    ]
    labels_hist = [lbl for lbl, _ in max((st["histogram"] for st in stats.values()), key=len)]
    hist_rows = []
    for lbl in labels_hist:
        row = [lbl]
        for st in stats.values():
            row.append(str(dict(st["histogram"]).get(lbl, 0)))
        hist_rows.append(row)
    confusion = {}
    for s, st in stats.items():
        m = st["confusion"]
        rows = [[CLASS_NAMES[i], *[str(int(v)) for v in m[i]], str(int(m[i].sum()))] for i in range(10)]
        confusion[s] = md_table(["label \\ adversarial", *CLASS_NAMES, "total"], rows)

    total_rows = layout.num_examples
    summary = (
        f"{total_rows} adversarial CIFAR-10 images ("
        + ", ".join(f"{s.num_examples} {s.name}" for s in layout.splits.values())
        + f") made with an untargeted {method_name(manifest)} on a CIFAR-10 {architecture_name(manifest).split(' (')[0]}, "
        + ("following" if method == "fgs" else "as the baseline of")
        + " Sean Johnson, *Adversarial Machine Learning with Untargeted Fast Gradient Sign Attack on CIFAR10 "
        "EfficientNet* (UMass Amherst). Every stored image is misclassified by the source model."
    )

    return {
        "marker": MARKER,
        "pretty_name": pretty_name(manifest),
        "summary": summary,
        "repo_id": repo_id,
        "load_path": load_path,
        "split_names": split_names,
        "first_split": split_names[0],
        "fields_table": md_table(["field", "type", "description"], fields),
        "class_names": ", ".join(f"{i} {n}" for i, n in enumerate(CLASS_NAMES)),
        "has_originals": "original_image" in layout.features,
        "attack_table": md_table(["setting", "value"], attack_rows),
        "model_table": md_table(["", ""], model_rows),
        "shipped_model": shipped_model_paths(manifest) if repo_id else None,  # (model, provenance) in the repo
        "recipe_table": md_table(["recipe", "value"], recipe_rows) if recipe_rows else "",
        "data_source": Path(str(src.get("source", "unknown"))).name or str(src.get("source", "unknown")),
        "data_table": md_table(["split", "images attacked", "shards", "sha256 fingerprint of pixels + labels"], data_rows),
        "rows_per_shard": cfg.get("rows_per_shard"),
        "shard_table": md_table(["file", "rows", "bytes", "sha256"], shard_rows),
        "versions": ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
        "attack_seconds": f"{attack_seconds:.1f}",
        "overview_table": md_table(
            ["split", "images attacked", "rows stored", "already misclassified", "fooled by the attack",
             "not fooled (absent)", "stored %", "attack success % (originally correct)", "mean iterations (attacked)",
             "max iterations used"],
            overview_rows,
        ),
        "norm_table": md_table(
            ["split", "rows", "L∞ mean", "L∞ median", "L∞ max", "L2 mean", "L2 median", "L2 max"], norm_rows),
        "phase_table": md_table(
            ["split", "phase", "rows", "L∞ p50 (levels)", "L∞ p90", "L∞ p99", "L∞ max", "L2 p50", "L2 max"], phase_rows)
        if phase_rows else "",
        "confidence_table": md_table(
            ["split", "mean original confidence (attacked)", "mean adversarial confidence (attacked)",
             "source model accuracy on these images"], conf_rows),
        "hist_table": md_table(["iterations", *stats.keys()], hist_rows),
        "confusion": confusion,
        "figures": figures,
        "notes": notes,
        "results": results,
        "results_tables": {r.name: md_table(["metric", "value"], r.numbers) for r in results if r.numbers},
        "limitations": _limitations(manifest, stats),
        "method": method,
        "how_generated": how,
        "step": attack["step"],
        "step_levels": f"{step_levels:g}",
        "max_iterations": attack["max_iterations"],
        "patience": attack.get("patience", "-"),
    }


def template_text() -> str:
    return resources.files(__package__).joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def render(context: dict, card_data) -> str:
    """The README text: YAML header from ``card_data``, body from the template (undefined names are errors)."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
        autoescape=False,
    )
    text = env.from_string(template_text()).render(card_data=card_data.to_yaml(), **context)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip("\n") + "\n"


def render_card(context: dict, card_data):
    """A ``huggingface_hub.DatasetCard`` (its YAML is parsed back, so a malformed header fails here)."""
    from huggingface_hub import DatasetCard

    return DatasetCard(render(context, card_data))
