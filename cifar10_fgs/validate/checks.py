"""The checks of one shard: its file, schema and rows (``check_shard``), and its rows against the CIFAR-10 originals
(``check_against_originals``); the checks of the folder as a whole are ``folder_checks``. ``report.CHECKS`` says
what each check asserts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from cifar10_fgs.attack.fgs import perturbation_norms
from cifar10_fgs.config import NORM_TOLERANCE, PHASES, Method
from cifar10_fgs.data import NUM_CLASSES
from cifar10_fgs.dataset.manifest import Config
from cifar10_fgs.validate.folder_checks import SplitState
from cifar10_fgs.validate.reading import ShardData, ShardSpec
from cifar10_fgs.validate.report import Collector


def check_shard(
    d: ShardData, cfg: Config, expected_schema, expected_features, state: SplitState, col: Collector
) -> bool:
    """File, schema and row checks of one shard; return True if its rows can be checked further."""
    if not _check_file(d, cfg, expected_schema, expected_features, state, col) or d.table is None:
        return False
    where = {"split": d.spec.split, "shard": d.spec.name}
    cols = {c: d.table.column(c).to_numpy() for c in d.table.column_names if c not in ("image", "original_image")}
    index = cols["index"].astype(np.int64)
    _check_images(d, index, where, col)
    _check_values(cols, index, cfg.max_iterations, where, col)
    _check_stored_predictions(cols, index, where, col)
    _check_indices(d.spec, index, state, where, col)
    state.stored_rows += d.table.num_rows
    return True


def _check_file(
    d: ShardData, cfg: Config, expected_schema, expected_features, state: SplitState, col: Collector
) -> bool:
    """Integrity (size, sha256) and schema of one shard; False if its rows cannot be interpreted."""
    import datasets

    spec = d.spec
    where = {"split": spec.split, "shard": spec.name}
    entry = spec.entry
    if not d.exists:
        state.unverified.append(spec)
        return False
    col.checked("shard_integrity")
    if entry is not None:
        if d.size != entry.bytes:
            col.fail(
                "shard_integrity",
                f"shard has {d.size} bytes, generation.json says {entry.bytes} (truncated or rewritten)",
                **where,
            )
        elif d.sha256 is not None and d.sha256 != entry.sha256:
            col.fail(
                "shard_integrity",
                f"shard's sha256 is {d.sha256[:12]}..., generation.json says "
                f"{entry.sha256[:12]}... (corrupted or rewritten)",
                **where,
            )
    col.checked("shard_schema")
    if d.table is None:
        col.fail("shard_schema", f"shard {d.error}", **where)
        state.unverified.append(spec)
        return False
    table = d.table
    if not table.schema.remove_metadata().equals(expected_schema.remove_metadata()):
        col.fail(
            "shard_schema",
            f"shard has columns {table.schema.names} of types "
            f"{[str(t) for t in table.schema.types]}, expected {expected_schema.names} "
            f"({'with' if cfg.with_originals else 'without'} original_image)",
            **where,
        )
        state.unverified.append(spec)
        return False
    try:
        feats = datasets.Features.from_arrow_schema(table.schema)
    except Exception:  # noqa: BLE001 - malformed metadata
        feats = None
    if feats != expected_features:
        col.fail(
            "shard_schema",
            "shard's schema metadata lacks the datasets features (ClassLabel names, Image): "
            "datasets.load_dataset would not decode it",
            **where,
        )
    n = table.num_rows
    if entry is not None and n != entry.rows:
        col.fail("shard_schema", f"shard has {n} rows, generation.json says {entry.rows}", **where)
    return True


def _check_images(d: ShardData, index: np.ndarray, where: dict, col: Collector) -> None:
    n = len(index)
    col.checked("images", n)
    for row, msg in d.decode_errors:
        col.fail("images", msg, row=row, index=int(index[row]), **where)
    if d.originals is not None:
        col.checked("images", n)
        for row, msg in d.original_errors:
            col.fail("images", msg, row=row, index=int(index[row]), **where)


def _check_values(cols: dict, index: np.ndarray, max_iterations: int, where: dict, col: Collector) -> None:

    iters = cols["iterations"]
    col.checked("values", len(index))

    def bad(mask, text):
        _fail_rows(col, "values", mask, text, index, where)

    for name in ("label", "original_prediction", "adversarial_prediction"):
        v = cols[name]
        bad((v < 0) | (v >= NUM_CLASSES), lambda r, v=v, name=name: f"{name} {int(v[r])} is outside 0-9")
    bad((iters < 0) | (iters > max_iterations), lambda r: f"iterations {int(iters[r])} is outside 0..{max_iterations}")
    for name in ("original_confidence", "adversarial_confidence"):
        v = cols[name]
        bad(~np.isfinite(v) | (v < 0) | (v > 1), lambda r, v=v, name=name: f"{name} {float(v[r])!r} is outside [0, 1]")
    for name in ("linf", "l2"):
        v = cols[name]
        bad(~np.isfinite(v) | (v < 0), lambda r, v=v, name=name: f"{name} {float(v[r])!r} is negative or not finite")


def _check_stored_predictions(cols: dict, index: np.ndarray, where: dict, col: Collector) -> None:
    label, adv_pred, orig_pred, iters = (
        cols[c] for c in ("label", "adversarial_prediction", "original_prediction", "iterations")
    )
    col.checked("stored_predictions", len(index))

    def bad(mask, text):
        _fail_rows(col, "stored_predictions", mask, text, index, where)

    bad(
        adv_pred == label,
        lambda r: f"stored adversarial_prediction {int(adv_pred[r])} equals the label (not adversarial)",
    )
    bad(
        (iters == 0) & (orig_pred != adv_pred),
        lambda r: (
            f"iterations is 0 (stored unchanged) but original_prediction "
            f"{int(orig_pred[r])} differs from adversarial_prediction {int(adv_pred[r])}"
        ),
    )
    if "phase" in cols:  # the ladder's rung: "unchanged" exactly for rows stored with 0 iterations
        phase = cols["phase"]
        bad(
            (phase < 0) | (phase >= len(PHASES)) | ((phase == 0) != (iters == 0)),
            lambda r: (
                f"phase {int(phase[r])} does not agree with iterations {int(iters[r])} "
                f"(phase {PHASES[0]!r} means 0 iterations)"
            ),
        )
    bad(
        (iters > 0) & (orig_pred != label),
        lambda r: (
            f"iterations is {int(iters[r])} but original_prediction "
            f"{int(orig_pred[r])} differs from the label {int(label[r])} (the attack starts from correctly "
            "classified images)"
        ),
    )


def _check_indices(spec: ShardSpec, index: np.ndarray, state: SplitState, where: dict, col: Collector) -> None:
    col.checked("indices", len(index))
    pos = spec.rows.positions(index)
    lo, hi = spec.index_range
    for row in np.flatnonzero((pos < spec.lo) | (pos >= spec.hi)):
        i = int(index[row])
        col.fail(
            "indices",
            f"index {i} is none of this shard's {spec.span}"
            + (", the --limit subset lacks it" if lo <= i < hi else ""),
            row=int(row),
            index=i,
            **where,
        )
    for row in np.flatnonzero(pos >= 0):
        p, i = int(pos[row]), int(index[row])
        if state.count[p]:
            first_shard, first_row = state.first[p]
            col.fail(
                "indices",
                f"index {i} is duplicated: already stored at {first_shard} row {first_row}",
                row=int(row),
                index=i,
                **where,
            )
        else:
            state.first[p] = (spec.name, int(row))
        state.count[p] += 1


def check_against_originals(d: ShardData, cfg: Config, col: Collector) -> None:
    """linf/l2, the linf bound, unchanged rows and original_image against the original split's row ``index``."""

    originals, table = d.original_split, d.table
    if originals is None or table is None:  # no --cifar10 original for this split, or the shard was not read
        return
    images, decoded = d.decoded_images()
    index = table.column("index").to_numpy().astype(np.int64)
    rows = np.flatnonzero(decoded & (index >= 0) & (index < len(originals)))
    if not len(rows):
        return
    where = {"split": d.spec.split, "shard": d.spec.name}
    fail = functools.partial(_fail_rows, col, index=index, where=where, rows=rows)
    iters = table.column("iterations").to_numpy()[rows]
    orig = originals[index[rows]]
    adv = images[rows]
    pixel_range = cfg.pixel_range
    linf, l2 = perturbation_norms(adv, orig, pixel_range)
    col.checked("perturbation", len(rows))
    for name, recomputed in (("linf", linf), ("l2", l2)):
        stored = table.column(name).to_numpy()[rows].astype(np.float64)
        differs = ~(np.abs(stored - recomputed.astype(np.float64)) <= NORM_TOLERANCE)
        fail("perturbation", differs, functools.partial(_norm_differs, name, stored, recomputed))
    col.checked("perturbation_bound", len(rows))
    if cfg.method is Method.ONEPIXEL:
        changed_pixels = (adv != orig).any(axis=-1).reshape(len(rows), -1).sum(axis=1)
        fail(
            "perturbation_bound",
            changed_pixels > 1,
            lambda j: f"{int(changed_pixels[j])} pixels differ from the original: a one-pixel attack changes one",
        )
    else:
        bound = cfg.step * iters.astype(np.float64) + 0.5 / pixel_range + NORM_TOLERANCE
        radius = cfg.attack_config().radius_levels
        if radius is not None:  # --max-linf: a hard ball, whole levels
            bound = np.minimum(bound, radius / pixel_range + NORM_TOLERANCE)
        fail(
            "perturbation_bound",
            linf.astype(np.float64) > bound,
            lambda j: (
                f"linf {float(linf[j]):.6g} exceeds step * iterations + 0.5/{pixel_range:g} = "
                f"{bound[j] - NORM_TOLERANCE:.6g} for {int(iters[j])} iterations"
            ),
        )
    zero = iters == 0
    col.checked("unchanged_rows", int(zero.sum()))
    changed = (adv != orig).reshape(len(rows), -1).any(axis=1)
    fail("unchanged_rows", zero & changed, lambda j: "iterations is 0 but the stored image differs from the original")
    if d.originals is not None and d.originals_decoded is not None:
        ok = d.originals_decoded[rows]
        col.checked("original_image", int(ok.sum()))
        differs = (d.originals[rows] != orig).reshape(len(rows), -1).any(axis=1)
        fail("original_image", ok & differs, lambda j: "original_image differs from the --cifar10 original")


def _norm_differs(name: str, stored: np.ndarray, recomputed: np.ndarray, j: int) -> str:
    return f"stored {name} {stored[j]:.7g} differs from the recomputed {float(recomputed[j]):.7g}"


def _fail_rows(
    col: Collector,
    check: str,
    mask: np.ndarray,
    message: Callable[[int], str],
    index: np.ndarray,
    where: dict,
    rows: np.ndarray | None = None,
) -> None:
    """A failure of ``check`` for each ``j`` where ``mask``: shard row ``rows[j]`` (or ``j``), ``message(j)``."""
    for j in np.flatnonzero(mask):
        row = int(j if rows is None else rows[j])
        col.fail(check, message(int(j)), row=row, index=int(index[row]), **where)
