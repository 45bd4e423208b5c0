"""``validate``: check a generated dataset folder against its manifest, its source model and the CIFAR-10 originals.

``validate_dataset(DIR)`` reads the stored bytes themselves (``shards.read_shard``, never
``datasets.load_dataset``, whose cache can serve stale rows after an in-place rewrite) and returns a
``ValidationReport`` that names every failure by check, shard and row. The checks:

* files: every shard listed in ``generation.json`` is present with its sha256 and byte size,
  nothing else lies in ``data/``, and the manifest says ``complete``;
* rows: the Arrow schema carries the expected ``datasets`` features, every image decodes from its
  PNG bytes to 32x32x3 uint8, labels and predictions are classes 0-9, no original index appears
  twice, and the stored indices plus the manifest's listed failures cover each split's rows exactly once
  (CIFAR-10 rows: ``0..num_rows-1``, or a ``--limit`` subset's ``original_rows``; ``dataset.manifest.rows``);
* with ``source_model``: the file is the generating model (sha256 equal to ``config.model_sha256``),
  and, fed by the input convention ``generation.json`` records (``config.input_convention``; none recorded:
  this project's Keras convention), it misclassifies every stored image and predicts exactly the stored
  ``adversarial_prediction`` (inference with the generation's batch size, ``config.attack`` or
  ``config.onepixel``, so the logits are bitwise those that generate saw). A convention declared on the
  command line or in a ``cifar10-fgs.json`` beside the model must agree with the recorded one;
* with ``cifar10``: the rows generated from have the manifest's fingerprint, against the original at each
  row's ``index`` (its CIFAR-10 row) the stored ``linf``/``l2``
  equal the recomputed distances, ``linf <= step * iterations + 0.5 / 255`` (for a ``--method
  onepixel`` folder: at most one pixel differs), rows with ``iterations == 0`` equal their
  original, and ``original_image`` (if stored) is the original;
* if ``DIR/README.md`` has YAML front matter with ``dataset_info``: its split sizes equal the
  stored row counts and its features name the shard columns.

Shards are streamed: one thread hashes, reads and decodes the next shard while another runs the
model on a chunk of earlier ones, so memory holds about two shards plus two model chunks.

Modules: ``report`` (the checks and the report), ``reading`` (prefetch and predictor), ``folder_checks``
(the layout, the files in ``data/``, each split's coverage), ``checks`` (one shard's file, schema and rows, and
its rows against the originals), ``card_check`` (the card's YAML, shared with ``upload``).
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

from cifar10_fgs.config import VALIDATE_PREDICT_ROWS
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.manifest import Manifest
from cifar10_fgs.dataset.shards import CARD, features
from cifar10_fgs.errors import ConfigError, NotADatasetError
from cifar10_fgs.models.convention import OPTION, Declared, check_recorded, read_sidecar
from cifar10_fgs.models.keras_input import load_keras
from cifar10_fgs.models.networks import read_keras
from cifar10_fgs.provenance import library_versions, sha256_file
from cifar10_fgs.validate.card_check import check_card
from cifar10_fgs.validate.checks import check_against_originals, check_shard
from cifar10_fgs.validate.folder_checks import (
    SplitState,
    check_coverage,
    check_files,
    layout,
    register_listed_failures,
)
from cifar10_fgs.validate.reading import Predictor, ShardSpec, _OriginalsCache, prefetched
from cifar10_fgs.validate.report import (
    CHECKS,
    MODEL_CHECKS,
    ORIGINALS_CHECKS,
    Collector,
    SplitCounts,
    ValidationReport,
)

__all__ = ["CHECKS", "ValidationReport", "validate_dataset"]

log = logging.getLogger(__name__)


def validate_dataset(
    dataset_dir: str | Path,
    source_model: str | Path | None = None,
    *,
    cifar10: str | Path | None = None,
    unsafe_model: bool = False,
    progress: bool = False,
    predict_rows: int = VALIDATE_PREDICT_ROWS,
    model_input: Declared | None = None,
) -> ValidationReport:
    """Check the dataset folder ``dataset_dir``; see the module docstring for every check.

    ``source_model`` (the generating model) enables the model checks, ``cifar10`` (any ``load_cifar10``
    input) the checks against the original images. Bad input (no such folder, no ``generation.json``, an
    unloadable model or CIFAR-10) raises a ``Cifar10FgsError``; failed checks are returned in the report.
    ``predict_rows`` is how many images the model sees per call at most (fewer calls, fewer zero-padded tail batches).
    ``model_input``: the model's input convention as the command line declares it (it must agree with the one
    ``generation.json`` records, which is used; nothing needs declaring).
    """

    t0 = time.time()
    dataset_dir = Path(dataset_dir)
    col = Collector()
    model_sha = sha256_file(source_model) if source_model is not None and Path(source_model).is_file() else None

    def report(splits=()) -> ValidationReport:
        return ValidationReport(
            dataset_dir=str(dataset_dir),
            checks=col.results(),
            failures=col.sorted_failures(),
            splits=tuple(splits),
            source_model=str(source_model) if source_model is not None else None,
            model_sha256=model_sha,
            cifar10=str(cifar10) if cifar10 is not None else None,
            seconds=time.time() - t0,
            library_versions=library_versions(),
        )

    manifest = _read_manifest(dataset_dir, col)
    if manifest is None:
        return report()
    specs = layout(manifest, col)
    check_files(dataset_dir, specs, col)
    check_model = _model_file(manifest, source_model, model_sha, unsafe_model, col, model_input)
    if cifar10 is None:
        for name in ("source_fingerprint", *ORIGINALS_CHECKS):
            col.skip(name, "no --cifar10 given")
    elif not manifest.config.with_originals:
        col.skip("original_image", "the dataset stores no original_image column")
    predictor = None
    if check_model:
        load = functools.partial(_fed_model, source_model, manifest, model_input, unsafe_model)
        predictor = Predictor(load, manifest.config.predict_batch_size, predict_rows, col)
    states = _check_shards(dataset_dir, manifest, specs, cifar10, predictor, progress, col)
    _check_card(dataset_dir, manifest, states, col)

    counts = [
        SplitCounts(
            s, info.num_rows, states[s].stored_rows, states[s].listed_failures, sum(1 for x in specs if x.split == s)
        )
        for s, info in manifest.config.splits.items()
    ]
    result = report(counts)
    log.info("%s", result.summary_line())
    return result


def _read_manifest(dataset_dir: Path, col: Collector) -> Manifest | None:
    """The manifest, its format and completeness checked; None (every other check skipped) if it is unusable."""
    try:
        manifest = mf.read(dataset_dir)
        manifest.config.max_iterations, manifest.config.predict_batch_size  # noqa: B018 - raise if unusable
    except NotADatasetError:
        raise
    except mf.ManifestError as exc:
        col.checked("manifest")
        col.fail(
            "manifest", str(exc) if mf.FILE in str(exc) else f"{mf.FILE} is unusable ({exc}): regenerate the dataset"
        )
        for name in CHECKS:
            if name != "manifest":
                col.skip(name, f"{mf.FILE} is unusable")
        return None
    if manifest.config.format_version != mf.FORMAT_VERSION:
        col.fail(
            "manifest",
            f"format_version is {manifest.config.format_version!r}; this cifar10-fgs reads {mf.FORMAT_VERSION}",
        )
    if not manifest.complete:
        col.fail(
            "manifest",
            f"{mf.FILE} says complete: false (generation unfinished, or another --worker-index "
            "has not merged its shards): rerun generate to finish",
        )
    return manifest


def _check_card(dataset_dir: Path, manifest: Manifest, states: dict[str, SplitState], col: Collector) -> None:
    """The card check: ``README.md``'s YAML against the shard columns and the stored row counts."""

    columns = list(features(manifest.config.with_originals).arrow_schema.names)
    card = check_card(dataset_dir, columns, {s: st.stored_rows for s, st in states.items()})
    if card.skipped:
        col.skip("card", card.skipped)
    col.checked("card", card.checked)
    for p in card.problems:
        col.fail("card", p.message, split=p.split, shard=CARD)


def _fed_model(source_model, manifest: Manifest, model_input: Declared | None, unsafe: bool):
    """The model as generate ran it: fed by the recorded convention (declarations checked against it)."""
    recorded = manifest.config.recorded_convention()
    return load_keras(source_model, [model_input], unsafe=unsafe, recorded=recorded, record=mf.FILE).model


def _model_file(
    manifest: Manifest, source_model, model_sha: str | None, unsafe: bool, col: Collector, model_input=None
) -> bool:
    """The model_file check; True if the model checks can run."""
    if source_model is None:
        if model_input:
            options = ", ".join(OPTION[k] for k in model_input.values())
            raise ConfigError(f"{options} describe the source model, and no --source-model is given: drop them")
        col.skip("model_file", "no --source-model given")
        for name in MODEL_CHECKS:
            col.skip(name, "model checks skipped: no --source-model given")
        return False

    if model_sha is None:
        read_keras(source_model, unsafe=unsafe)  # raises the one-line ModelError
    assert model_sha is not None  # read_keras raised: source_model is no file
    col.checked("model_file")
    want = manifest.config.model_sha256
    if model_sha == want:  # a declaration that disagrees with the recorded convention: refused before any shard
        declared = [read_sidecar(Path(source_model).parent), model_input]
        check_recorded(manifest.config.recorded_convention(), declared, str(source_model), mf.FILE)
        return True
    col.fail(
        "model_file",
        f"--source-model {source_model} has sha256 {model_sha[:12]}..., but the dataset was generated "
        f"by {manifest.source_model.path or 'a model'!r} with sha256 {str(want)[:12]}...: pass the generating model",
    )
    for name in MODEL_CHECKS:
        col.skip(name, "skipped: --source-model is not the generating model")
    return False


def _check_shards(
    dataset_dir: Path,
    manifest: Manifest,
    specs: list[ShardSpec],
    cifar10,
    predictor: Predictor | None,
    progress: bool,
    col: Collector,
) -> dict[str, SplitState]:
    """Read and check every shard (and with a predictor, run the model on it); then each split's coverage."""
    from tqdm.auto import tqdm

    cfg = manifest.config
    expected_features = features(cfg.with_originals)
    expected_schema = expected_features.arrow_schema
    states = {s: SplitState(info.num_rows) for s, info in cfg.splits.items()}
    total = sum(s.entry.rows for s in specs if s.entry)
    bar = tqdm(total=total, desc="validate", unit="row", disable=not progress, smoothing=0.1)
    try:
        for d in prefetched(dataset_dir, specs, expected_schema, _OriginalsCache(cifar10, manifest)):
            spec = d.spec
            state = states[spec.split]
            if d.cifar10_loaded:
                col.checked("source_fingerprint")
                if d.cifar10_problem:
                    col.fail("source_fingerprint", d.cifar10_problem, split=spec.split)
                    for name in ORIGINALS_CHECKS:
                        col.skip(name, f"skipped for {spec.split}: --cifar10 does not match")
            register_listed_failures(spec, state, col)
            if check_shard(d, cfg, expected_schema, expected_features, state, col):
                if d.original_split is not None:
                    check_against_originals(d, cfg, col)
                if predictor is not None:
                    predictor.add(d)
            elif d.table is not None:
                state.stored_rows += d.table.num_rows
            elif spec.entry:
                state.stored_rows += spec.entry.rows
            if d.table is not None:
                bar.update(d.table.num_rows)
                bar.set_postfix(failures=len(col.failures), refresh=False)
            log.info("checked %s (%d failures so far)", spec.name, len(col.failures))
        if predictor is not None:
            predictor.finish()
    finally:
        bar.close()
        if predictor is not None:
            predictor.close()
    for split in cfg.splits:
        check_coverage(split, [s for s in specs if s.split == split], states[split], col)
    return states
