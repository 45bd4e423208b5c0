"""A transfer leaderboard: any number of models scored on one adversarial split, local or from the hub.

``evaluate_leaderboard(dataset_dir, models)`` reads the dataset (a folder, or ``hub:USER/NAME[@REVISION]``
downloaded by :mod:`cifar10_fgs.hub`), joins the split to its originals with the transfer
evaluation's own functions (:func:`cifar10_fgs.evaluate.joined.load_joined`, ``classify``,
``random_sign_control``) and scores every model on the original images, their adversarial copies
and the random-sign control. Each model is a local ``.keras`` or ``.onnx`` file or an
``hf://USER/NAME[@REVISION]`` model repo holding a Keras model (``config.json`` + ``model.weights.h5``,
as ``model.save("hf://...")`` writes it) or one ``.onnx`` file (:mod:`cifar10_fgs.models.forward`).
Keras models load in safe mode unless ``unsafe_model``, ONNX models run in onnxruntime; each is fed by the
input convention ``model_input`` and its ``cifar10-fgs.json`` declare (:mod:`cifar10_fgs.models.convention`).

It writes ``NAME.json`` (one entry per model in the style of RobustBench's per-model JSON, plus the
dataset, settings and library versions) and ``NAME.md`` (the table) into ``out_dir``, entries sorted
by adversarial accuracy, best first. A leaderboard made with other settings is replaced only with
``overwrite``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cifar10_fgs.config import check_batch_size
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.errors import Cifar10Error, ConfigError
from cifar10_fgs.evaluate.joined import dataset_identity, load_joined, read_generation
from cifar10_fgs.evaluate.metrics import classify, linf_levels, random_sign_control
from cifar10_fgs.evaluate.results import check_name, refuse_other_settings
from cifar10_fgs.evaluate.skeleton import EvaluateOptions
from cifar10_fgs.formatting import fmt
from cifar10_fgs.hub import download, is_hub_ref, is_model_uri, parse_hub_ref
from cifar10_fgs.models.forward import Classifier, load_classifier, load_hub_folder, model_key
from cifar10_fgs.provenance import atomic_write_bytes, dumps_sorted, library_versions, sha256_bytes, write_json

log = logging.getLogger(__name__)

DEFAULT_NAME = "leaderboard"


@dataclass(frozen=True)
class LoadedModel:
    spec: str  # as given: a path or hf://USER/NAME[@REVISION]
    path: str  # the local file or downloaded folder
    sha256: str  # of the .keras or .onnx file; for a Keras folder, over "name sha256" lines of its two files
    commit: str | None  # the hub commit of an hf:// model
    model: Classifier  # Keras or ONNX
    info: dict  # model.describe(): framework, input convention, opset, producer, provider, runtime


@dataclass(frozen=True)
class LeaderboardEntry:
    rank: int
    name: str  # file name or repo id
    model: str  # as given
    sha256: str
    commit: str | None
    architecture: str
    parameters: int
    framework: str  # keras | onnx
    input_convention: dict  # layout, scale, mean, std, output, and where each was declared
    opset: int | None  # ONNX opset of the default domain (None for Keras)
    producer: str  # what wrote the file (e.g. "pytorch 2.5.1", "keras 3.15.1")
    provider: str  # what ran it (an onnxruntime execution provider, or "tensorflow CPU|GPU")
    runtime: str  # the libraries that ran it, with versions
    clean_acc: float  # accuracy on the original images of the joined rows (fraction)
    adversarial_acc: float  # accuracy on their adversarial copies
    accuracy_drop: float  # clean_acc - adversarial_acc
    random_sign_control_drop: float  # clean_acc - accuracy on the random-sign control
    clean_loss: float
    adversarial_loss: float
    images_per_second: float  # inference on the adversarial copies, batch_size images per call
    generated_the_dataset: bool  # the source model itself (white-box, not transfer)


@dataclass(frozen=True)
class Leaderboard:  # its field names are the keys of `evaluate transfer --leaderboard --json`
    dataset: str  # the folder, or hub:USER/NAME@<commit>
    commit: str | None
    split: str
    num_rows_used: int
    num_rows_split: int
    entries: tuple[LeaderboardEntry, ...]  # best adversarial accuracy first
    json_path: str
    markdown_path: str
    seconds: float


# --------------------------------------------------------------------------- models


def load_candidate(
    spec: str, *, declared=None, unsafe: bool = False, progress: bool = False, recorded=None
) -> LoadedModel:
    """A local ``.keras`` / ``.onnx`` file or an ``hf://`` model repo, loaded and identified.

    ``recorded``: the input convention generation.json records for a local Keras file (the generating model); it
    is used, and ``declared`` and the model's sidecar must agree with it."""

    commit = None
    if is_model_uri(spec):
        snapshot = download(parse_hub_ref(spec, repo_type="model"), progress=progress)
        model = load_hub_folder(snapshot.path, spec, declared=declared, unsafe=unsafe)
        commit = snapshot.commit
    else:
        model = load_classifier(spec, declared=declared, unsafe=unsafe, recorded=recorded, record=mf.FILE)
    return LoadedModel(spec, model.path, model.sha256, commit, model, model.describe())


# --------------------------------------------------------------------------- dataset


def _resolve_dataset(dataset_dir: str | Path, progress: bool):
    """(local folder, label, commit) of a folder or a hub:USER/NAME[@REVISION] reference."""

    if is_hub_ref(str(dataset_dir)):
        snapshot = download(parse_hub_ref(str(dataset_dir)), progress=progress)
        return Path(snapshot.path), snapshot.label, snapshot.commit
    return Path(dataset_dir), str(dataset_dir), None


def _cifar10_for(generation, cifar10, label: str):
    """``cifar10`` or the manifest's, with a one-line error when that is a local path not on this machine."""
    if cifar10 is not None:
        return cifar10
    recorded = str(generation.cifar10 or "")
    if recorded and not recorded.startswith("hub:") and recorded != "keras" and not Path(recorded).exists():
        raise Cifar10Error(
            f"{label} was made from {recorded}, which is not on this machine: pass --cifar10 DATA "
            "(the original CIFAR-10, e.g. hub:uoft-cs/cifar10 or cifar-10-python.tar.gz)"
        )
    return None


# --------------------------------------------------------------------------- scoring


def _score(loaded: LoadedModel, j, control, batch_size: int, source_sha: str | None) -> dict:

    clean = classify(loaded.model, j.original, j.labels, batch_size)  # also warms the model up
    t0 = time.perf_counter()
    adversarial = classify(loaded.model, j.adversarial, j.labels, batch_size)
    seconds = time.perf_counter() - t0
    ctrl = classify(loaded.model, control, j.labels, batch_size)
    c, a, r = clean.metrics(), adversarial.metrics(), ctrl.metrics()
    name = loaded.spec.split("://", 1)[1] if "://" in loaded.spec else Path(loaded.spec).name
    return {
        "name": name,
        "model": loaded.spec,
        "sha256": loaded.sha256,
        "commit": loaded.commit,
        "architecture": loaded.model.architecture,
        "parameters": loaded.model.parameters,
        **loaded.info,
        "clean_acc": c.accuracy,
        "adversarial_acc": a.accuracy,
        "accuracy_drop": c.accuracy - a.accuracy,
        "random_sign_control_drop": c.accuracy - r.accuracy,
        "clean_loss": c.loss,
        "adversarial_loss": a.loss,
        "images_per_second": len(j) / seconds if seconds > 0 else float("inf"),
        "generated_the_dataset": loaded.sha256 == source_sha,
    }


def _markdown(label: str, split: str, j, rows: list[dict]) -> str:
    head = [
        "rank",
        "model",
        "architecture",
        "framework",
        "parameters",
        "clean acc",
        "adversarial acc",
        "drop",
        "random-sign drop",
        "images/s",
        "sha256",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for e in rows:
        who = f"`{e['name']}`" + (" (source, white-box)" if e["generated_the_dataset"] else "")
        lines.append(
            "| "
            + " | ".join(
                [
                    str(e["rank"]),
                    who,
                    f"`{e['architecture']}`",
                    e["framework"],
                    f"{e['parameters']:,}",
                    fmt(e["clean_acc"]),
                    fmt(e["adversarial_acc"]),
                    fmt(e["accuracy_drop"]),
                    fmt(e["random_sign_control_drop"]),
                    f"{e['images_per_second']:.0f}",
                    f"`{e['sha256'][:12]}`",
                ]
            )
            + " |"
        )
    note = (
        f"Transfer leaderboard on `{label}`, {split} split: {len(j)} of {j.num_rows_split} rows"
        + (f" ({len(j.failures)} rows the attack did not fool are absent)" if j.failures else "")
        + ". Sorted by adversarial accuracy. The random-sign control adds random ±1 noise at each adversarial "
        "copy's L∞.\n\n"
    )
    return note + "\n".join(lines) + "\n"


METRIC_DEFINITIONS = {
    "clean_acc": "accuracy (fraction) on the original images of the joined rows",
    "adversarial_acc": "accuracy on their adversarial copies from the dataset",
    "accuracy_drop": "clean_acc - adversarial_acc",
    "random_sign_control_drop": "clean_acc - accuracy on each original plus random +-1 signs times its "
    "adversarial copy's L-infinity (seeded by control_seed and the row index)",
    "images_per_second": "adversarial rows / seconds of inference on them (batch_size per call, after warm-up)",
    "sha256": "of the .keras or .onnx file; for a Keras hf:// folder, of the lines 'name sha256' of config.json and "
    "model.weights.h5; for an ONNX file with external data, of the lines 'name sha256' of the file and its data files",
    "framework": "keras (run by TensorFlow) or onnx (run by onnxruntime)",
    "input_convention": "how the model was fed: layout NCHW|NHWC, pixels scaled to [0, scale], then (x - mean) / std "
    "per channel; output logits or probabilities (turned into log-probabilities); declared_by: where each was set",
    "opset": "the ONNX file's opset of the default domain (null for Keras)",
    "producer": "the tool that wrote the file, as recorded in it",
    "provider": "the onnxruntime execution provider that ran it, or tensorflow CPU|GPU",
}


@dataclass(frozen=True)
class LeaderboardOptions(EvaluateOptions):
    name: str = DEFAULT_NAME
    split: str = "test"  # the split evaluated
    seed: int = 0  # seeds the random-sign control (with each row's index)
    out_dir: str | Path | None = None  # where NAME.json and NAME.md go; None: DIR/results, or . for a hub copy


def evaluate_leaderboard(
    dataset_dir: str | Path, models: Sequence[str], options: LeaderboardOptions = LeaderboardOptions()
) -> Leaderboard:
    """Score ``models`` on ``dataset_dir``, a folder or ``hub:`` copy (see the module docstring); ``options.model_input``
    (a ``convention.Declared``) declares how every model takes its pixels (a model's own sidecar may too)."""

    t0 = time.time()
    o = options
    name, split, seed, progress = o.name, o.split, o.seed, o.progress
    batch_size = _check_arguments(models, name, o.batch_size)
    local_dir, label, commit = _resolve_dataset(dataset_dir, progress)
    generation = read_generation(local_dir)
    cifar10 = _cifar10_for(generation, o.cifar10, label)
    out = Path(o.out_dir) if o.out_dir is not None else (Path.cwd() if commit else local_dir / "results")
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    loaded = [
        load_candidate(
            m,
            declared=o.model_input,
            unsafe=o.unsafe_model,
            progress=progress,
            recorded=None if is_model_uri(m) else generation.recorded_convention(m),
        )
        for m in models
    ]
    identity = dataset_identity(local_dir, generation, [split]) if split in generation.splits else {}
    settings = {"split": split, "control_seed": seed, "batch_size": batch_size}
    key = _settings_key(settings, identity, commit, loaded)
    why = "holds a leaderboard made with other settings or models"
    refuse_other_settings(json_path, key, o.overwrite, why, "another --name / --out")

    joined, generation, used_cifar10 = load_joined(
        local_dir, [split], cifar10, cache_dir=o.cache_dir, progress=progress
    )
    j = joined[split]
    control = random_sign_control(j.original, linf_levels(j.adversarial, j.original), seed, keys=j.index)
    scored = _ranked(loaded, j, control, batch_size, generation.source_model_sha256)
    entries = tuple(LeaderboardEntry(**e) for e in scored)
    identity["dir"] = label
    report: dict[str, Any] = {
        "kind": "leaderboard",
        "name": name,
        "title": "Transfer leaderboard",
        "settings": settings,
        "settings_sha256": key,
        "dataset": {**identity, "commit": commit, "reference": str(dataset_dir)},
        "data_source": used_cifar10,
        "threat_model": "transfer",
        "rows": {
            "split": split,
            "num_rows_split": j.num_rows_split,
            "num_rows_used": len(j),
            "failures_absent": len(j.failures),
        },
        "models": [{**asdict(e), "dataset": "cifar10", "number_forward_passes": 1} for e in entries],
        "metric_definitions": METRIC_DEFINITIONS,
        "library_versions": library_versions(),
        "seconds": round(time.time() - t0, 2),
    }
    report["markdown"] = _markdown(label, split, j, scored)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(md_path, f"# Transfer leaderboard\n\n{report['markdown']}".encode())
    write_json(json_path, report)
    log.info("wrote %s", json_path)
    return Leaderboard(
        dataset=label,
        commit=commit,
        split=split,
        num_rows_used=len(j),
        num_rows_split=j.num_rows_split,
        entries=entries,
        json_path=str(json_path),
        markdown_path=str(md_path),
        seconds=report["seconds"],
    )


def _settings_key(settings: dict, identity: dict, commit: str | None, loaded: list[LoadedModel]) -> str:
    """The leaderboard's ``settings_sha256``: its settings, the dataset's config, the hub commit and every model."""
    models = sorted((model_key({"sha256": m.sha256, **m.info}) for m in loaded), key=str)
    body = {"kind": "leaderboard", "settings": settings, "dataset": identity.get("config_sha256"), "commit": commit}
    return sha256_bytes(dumps_sorted({**body, "models": models}).encode())


def _check_arguments(models: Sequence[str], name: str, batch_size: int) -> int:
    """The batch size, after checking it, ``name`` and ``models``."""

    check_name(name)
    check_batch_size(batch_size)
    if not models:
        raise ConfigError("no --model given: pass one or more .keras or .onnx files or hf://USER/NAME models")
    if len(set(models)) != len(models):
        raise ConfigError("a --model is given twice: pass each model once")
    return batch_size


def _ranked(loaded: list[LoadedModel], j, control, batch_size: int, source_sha: str | None) -> list[dict]:
    """Every model scored (``_score``), best adversarial accuracy first, each with its ``rank``."""
    scored = []
    for m in loaded:
        scored.append(_score(m, j, control, batch_size, source_sha))
        log.info("%s: clean %.4f adversarial %.4f", m.spec, scored[-1]["clean_acc"], scored[-1]["adversarial_acc"])
    scored.sort(key=lambda e: (-e["adversarial_acc"], -e["clean_acc"], e["name"]))
    for i, e in enumerate(scored, 1):
        e["rank"] = i
    return scored
