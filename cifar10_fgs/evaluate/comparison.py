"""The paper beside our measurements: ``DIR/results/paper.json`` and ``paper.md``, built from the results files.

Every number of ``paper.PAPER_VALUES`` gets a row with ours (or "not measured") and where ours comes from
(``<results file>#<path/with/slashes>`` or ``generation.json``). Each effect the paper draws from its numbers is
checked in direction and marked reproduced or not, with a one-line reason, computed from our numbers,
where it is not. Retraining rows come once per retraining mode found, Gaussian rows once per filter
variant, and the paper's two Gaussian trends are checked for every (variant, retrained network).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from cifar10_fgs.evaluate.joined import Generation, read_generation
from cifar10_fgs.evaluate.paper import PAPER, PAPER_STD
from cifar10_fgs.evaluate.results import RESULTS_DIR, claim_kind, md_table, write_results
from cifar10_fgs.formatting import fmt, quantity
from cifar10_fgs.provenance import splice_marked

log = logging.getLogger(__name__)

NAME = "paper"
TITLE = "Comparison with the paper"
DEFAULT_INPUTS = {"transfer": "transfer", "retrain": ("retrain", "retrain_mixed"), "gaussian": "gaussian"}


@dataclass(frozen=True)
class Row:
    """One number of the paper beside ours."""

    key: str  # paper.PAPER key
    label: str  # which of our runs ("", a retraining mode or a Gaussian variant)
    section: str
    quantity: str
    paper: float
    ours: float | None  # None: not measured by these results
    unit: str
    source: str | None  # "<file>#<path/inside/the/json>" or "generation.json"


@dataclass(frozen=True)
class Effect:
    """A direction the paper reports, checked on our numbers."""

    key: str
    label: str
    section: str
    claim: str  # the paper's observation
    ours: str  # our numbers behind the check
    reproduced: bool | None  # None: not measured
    reason: str | None  # one line where it is not reproduced


@dataclass(frozen=True)
class PaperComparison:
    json_path: str
    markdown_path: str
    rows: tuple[Row, ...]
    effects: tuple[Effect, ...]
    report: dict


class _Results:
    """The results files of one dataset folder, read once; ``get`` records where each number came from."""

    def __init__(self, dataset_dir: Path):
        self.dataset_dir = dataset_dir
        self.files: dict[str, dict] = {}

    def load(self, name: str) -> dict | None:
        path = self.dataset_dir / RESULTS_DIR / f"{name}.json"
        try:
            self.files[name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return self.files[name]

    def get(self, name: str, path: str) -> tuple[float | None, str | None]:
        obj = self.files.get(name)
        for part in path.split("/"):
            if not isinstance(obj, dict) or part not in obj:
                return None, None
            obj = obj[part]
        return (float(obj), f"{name}.json#{path}") if isinstance(obj, (int, float)) else (None, None)


def _row(rows: list, key: str, value: float | None, source: str | None, label: str = "") -> float | None:
    p = PAPER[key]
    rows.append(Row(key, label, p.section, p.quantity, p.value, value, p.unit, source))
    return value


def _effect(
    effects: list, key: str, label: str, section: str, claim: str, ours: str, ok: bool | None, reason: str | None
) -> None:
    effects.append(Effect(key, label, section, claim, ours, ok, None if ok or ok is None else reason))


def _attack(g: Generation, rows: list, effects: list) -> None:
    total = sum(s.num_rows for s in g.splits.values())
    failed = sum(len(s.failures) for s in g.splits.values())
    fooled = 100.0 * (total - failed) / total if total else None
    _row(rows, "attack_step", g.attack_step, "generation.json" if g.attack_step is not None else None)
    _row(rows, "perceptible_step", None, None)
    _row(rows, "fooled_percent", fooled, "generation.json")
    secs = g.attack_seconds
    _row(rows, "fgs_seconds_per_image", secs / total if secs and total else None, "generation.json" if secs else None)
    _row(rows, "onepixel_seconds_per_image", None, None)
    _row(
        rows,
        "attack_hours_60k",
        secs / 3600.0 if secs else None,
        "generation.json" if secs else None,
        f"{total} images" if total != 60000 else "",
    )
    _effect(
        effects,
        "all_fooled",
        "",
        "II",
        "every image is perturbed until the source misclassifies it",
        f"{fooled:.2f}% of {total} images" if fooled is not None else "—",
        None if fooled is None else failed == 0,
        f"{failed} images were not fooled within the attack's iteration limit (listed in generation.json)",
    )


def _transfer(r: _Results, name: str, rows: list, effects: list) -> None:
    r.load(name)
    acc_o = _row(rows, "target_original_accuracy", *r.get(name, "results/target/original/accuracy"))
    acc_a = _row(rows, "target_adversarial_accuracy", *r.get(name, "results/target/adversarial/accuracy"))
    _row(rows, "target_original_loss", *r.get(name, "results/target/original/loss"))
    _row(rows, "target_adversarial_loss", *r.get(name, "results/target/adversarial/loss"))
    drop = _row(rows, "target_accuracy_drop", *r.get(name, "results/target/accuracy_drop"))
    fooled = _row(rows, "confidence_fooled", *r.get(name, "results/target/confidence/fooled/mean_original_confidence"))
    held = _row(rows, "confidence_held", *r.get(name, "results/target/confidence/held/mean_original_confidence"))
    _effect(
        effects,
        "transfer_drop",
        "",
        "IV",
        "the adversarial images lower the target's accuracy",
        f"{fmt(acc_o)} → {fmt(acc_a)}",
        None if drop is None else drop > 0,
        "the copies do not transfer to this target: its errors are not where the source's are",
    )
    _effect(
        effects,
        "confidence",
        "",
        "IV",
        "copies that fool the target come from less confident originals",
        f"fooled {fmt(fooled)} vs held {fmt(held)}",
        None if fooled is None or held is None else fooled < held,
        "with few fooled rows the mean confidence is noisy; see the transfer confidence histogram",
    )


def _retrain(r: _Results, names: Sequence[str], rows: list, effects: list) -> dict:
    """Rows and effects per retraining mode found; returns {mode: retrained model sha256}."""
    found = {}
    for name in names:
        if r.load(name) is None:
            continue
        mode = r.files[name].get("results", {}).get("training", {}).get("mode", name)
        found[mode] = (r.files[name].get("models", {}).get("retrained") or {}).get("sha256")
        o = _row(rows, "retrained_original_accuracy", *r.get(name, "results/retrained/original/accuracy"), mode)
        a = _row(rows, "retrained_adversarial_accuracy", *r.get(name, "results/retrained/adversarial/accuracy"), mode)
        _row(rows, "retrained_original_loss", *r.get(name, "results/retrained/original/loss"), mode)
        _row(rows, "retrained_adversarial_loss", *r.get(name, "results/retrained/adversarial/loss"), mode)
        before = _row(rows, "drop_before_retraining", *r.get(name, "results/accuracy_drop_before"), mode)
        after = _row(rows, "drop_after_retraining", *r.get(name, "results/accuracy_drop_after"), mode)
        _row(rows, "retraining_minutes", *r.get(name, "results/training/minutes"), mode)
        to, _ = r.get(name, "results/target/original/accuracy")
        ta, _ = r.get(name, "results/target/adversarial/accuracy")
        _effect(
            effects,
            "retrain_narrows_drop",
            mode,
            "V",
            "retraining narrows the accuracy drop",
            f"{fmt(before)} → {fmt(after)}",
            None if before is None or after is None else after < before,
            "retraining on these adversarial images did not make the network more robust to them",
        )
        for key, ours, base, set_name in (
            ("retrain_better_original", o, to, "original"),
            ("retrain_better_adversarial", a, ta, "adversarial"),
        ):
            why = (
                "trained on adversarial images only, it sees no clean image and loses clean accuracy"
                if mode == "adversarial" and set_name == "original"
                else f"the retrained network ({fmt(ours)}) does not beat the original ({fmt(base)}) on this set"
            )
            _effect(
                effects,
                key,
                mode,
                "V",
                f"the retrained network is more accurate on the {set_name} set",
                f"{fmt(base)} → {fmt(ours)}",
                None if base is None or ours is None else ours > base,
                why,
            )
    return found


def _gaussian_roles(g: dict, target_sha: str | None, retrained: dict) -> tuple[str | None, dict]:
    """(label of the original target in gaussian.json, {retraining mode: label}) matched by model sha256."""
    by_sha = {info.get("sha256"): label for label, info in g.get("models", {}).items()}
    target = by_sha.get(target_sha) or ("target" if "target" in g.get("models", {}) else None)
    return target, {mode: by_sha[sha] for mode, sha in retrained.items() if sha in by_sha}


def _gaussian(g: dict, name: str, target_sha: str | None, retrained: dict, rows: list, effects: list) -> None:
    target, modes = _gaussian_roles(g, target_sha, retrained)
    table = g.get("results", {}).get("table", [])
    acc = {(t["variant"], t["model"], t["set"], t["std"]): t["accuracy"] for t in table if "variant" in t}
    index = {k: i for i, k in enumerate((t.get("variant"), t["model"], t["set"], t["std"]) for t in table)}
    stds = sorted({k[3] for k in acc})
    per_variant = g.get("results", {}).get("variants", {})
    order = [v for v in g.get("settings", {}).get("variants", []) if v in per_variant] or sorted(per_variant)
    for v, info in ((v, per_variant[v]) for v in order):

        def at(model, set_name, std):
            k = (v, model, set_name, std)
            return acc.get(k), (f"{name}.json#results/table/{index[k]}/accuracy" if k in index else None)

        base, src0 = at(target, "adversarial", 0.0)
        mid, src5 = at(target, "adversarial", PAPER_STD)
        _row(rows, "gaussian_target_adversarial_no_filter", base, src0, v)
        _row(rows, "gaussian_target_adversarial_std_0.5", mid, src5, v)
        gain_src = f"{name}.json#results/variants/{v}/recovered_on_adversarial/{target}/{PAPER_STD:g}"
        gain = (info.get("recovered_on_adversarial", {}).get(target) or {}).get(f"{PAPER_STD:g}")
        _row(rows, "gaussian_gain_std_0.5", gain, gain_src if gain is not None else None, v)
        costs = {s: ms for s, ms in info.get("ms_per_image_batched", {}).items() if float(s) > 0}
        worst = max(costs, key=lambda s: costs[s], default=None)
        _row(
            rows,
            "gaussian_ms_per_image",
            costs.get(worst),
            f"{name}.json#results/variants/{v}/ms_per_image_batched/{worst}" if worst else None,
            v,
        )
        orig0, orig5 = at(target, "original", 0.0)[0], at(target, "original", PAPER_STD)[0]
        _effect(
            effects,
            "gaussian_gain",
            v,
            "VI",
            f"std {PAPER_STD:g} raises the target's accuracy on the adversarial set",
            f"{fmt(base)} → {fmt(mid)} ({'—' if gain is None else f'{gain:+.4f}'})",
            None if gain is None else gain > 0,
            _why_no_gain(v, acc, target, orig0, orig5),
        )
        later = [at(target, "adversarial", s)[0] for s in stds if s >= PAPER_STD]
        _effect(
            effects,
            "gaussian_decline",
            v,
            "VI",
            f"above std {PAPER_STD:g}, a larger std lowers that accuracy",
            " → ".join(fmt(x) for x in later),
            None if len(later) < 2 else all(b < a for a, b in zip(later, later[1:])),
            "accuracy does not fall steadily with the std beyond 0.5 here",
        )
        worst_ms = costs.get(worst)
        _effect(
            effects,
            "gaussian_cheap",
            v,
            "VI",
            "the filter costs under 1 ms per image",
            "—" if worst_ms is None else f"at most {worst_ms:.4f} ms",
            None if worst_ms is None else worst_ms < 1.0,
            "the filter is slower than 1 ms per image on this machine",
        )
        for mode, label in modes.items():
            _trends(effects, v, mode, label, target, acc, stds)


def _why_no_gain(v: str, acc: dict, target, orig0, orig5) -> str:
    if v == "spatial-uint8" and acc.get((v, target, "adversarial", 0.25)) == acc.get((v, target, "adversarial", 0.0)):
        rounding = "; std 0.25 changes no pixel after rounding to uint8"
    else:
        rounding = ""
    if orig0 is not None and orig5 is not None and orig5 < orig0:
        return (
            f"the blur costs the target {orig0 - orig5:.4f} on the original images too: it removes image detail the "
            f"target uses, not the perturbation selectively{rounding}"
        )
    return f"the blur does not remove enough of these perturbations to help{rounding}"


def _trends(effects: list, v: str, mode: str, label: str, target, acc: dict, stds: list) -> None:
    """The paper's two trends for one retrained network (section VI)."""
    ups = [
        (s, set_name, acc[(v, label, set_name, s)] - acc[(v, label, set_name, 0.0)])
        for s in stds
        if s > 0
        for set_name in ("original", "adversarial")
        if (v, label, set_name, s) in acc and (v, label, set_name, 0.0) in acc
    ]
    gains = [u for u in ups if u[2] > 0]
    best = max(gains, key=lambda u: u[2], default=None)
    _effect(
        effects,
        "trend_filter_never_helps_retrained",
        f"{v} / {mode}",
        "VI",
        "the filter never increases the retrained network's accuracy",
        f"largest change {max((u[2] for u in ups), default=0.0):+.4f}" if ups else "—",
        None if not ups else not gains,
        None if best is None else f"std {best[0]:g} raises it by {best[2]:+.4f} on the {best[1]} set",
    )
    after = [
        (s, set_name, acc[(v, label, set_name, s)], acc[(v, target, set_name, s)])
        for s in stds
        if s > PAPER_STD
        for set_name in ("original", "adversarial")
        if (v, label, set_name, s) in acc and (v, target, set_name, s) in acc
    ]
    above = [a for a in after if a[2] >= a[3]]
    _effect(
        effects,
        "trend_retrained_below_after_0.5",
        f"{v} / {mode}",
        "VI",
        f"after std {PAPER_STD:g} the retrained network is below the original on both sets",
        f"{len(after) - len(above)} of {len(after)} (std, set) pairs below" if after else "—",
        None if not after else not above,
        None
        if not above
        else f"at std {above[0][0]:g} it stays at {above[0][2]:.4f} vs the original's "
        f"{above[0][3]:.4f} on the {above[0][1]} set",
    )


def build_comparison(dataset_dir: str | Path, inputs: dict | None = None) -> tuple[list[Row], list[Effect], dict]:
    """Rows, effects and the results files read (name -> settings_sha256) for the folder."""
    dataset_dir = Path(dataset_dir)
    inputs = {**DEFAULT_INPUTS, **(inputs or {})}
    r = _Results(dataset_dir)
    rows: list[Row] = []
    effects: list[Effect] = []
    _attack(read_generation(dataset_dir), rows, effects)
    _transfer(r, inputs["transfer"], rows, effects)
    retrained = _retrain(r, inputs["retrain"], rows, effects)
    target_sha = next(
        (
            f.get("models", {}).get("target", {}).get("sha256")
            for f in r.files.values()
            if f.get("models", {}).get("target")
        ),
        None,
    )
    if (r.load(inputs["gaussian"]) or {}).get("results", {}).get("variants"):
        _gaussian(r.files[inputs["gaussian"]], inputs["gaussian"], target_sha, retrained, rows, effects)
    else:
        for key in (
            "gaussian_target_adversarial_no_filter",
            "gaussian_target_adversarial_std_0.5",
            "gaussian_gain_std_0.5",
            "gaussian_ms_per_image",
        ):
            _row(rows, key, None, None)
    used = {n: f.get("settings_sha256") for n, f in sorted(r.files.items())}
    return rows, effects, used


def write_paper_comparison(
    dataset_dir: str | Path, inputs: dict | None = None, *, overwrite: bool = False
) -> PaperComparison:
    """Write ``DIR/results/paper.json`` and ``paper.md`` from the results files present (see module docstring).

    An earlier comparison is rewritten; a ``paper.json`` that is not one (e.g. ``evaluate transfer --name paper``)
    is replaced only with ``overwrite``.
    """
    dataset_dir = Path(dataset_dir)
    claim_kind(dataset_dir, NAME, "paper", overwrite)
    rows, effects, used = build_comparison(dataset_dir, inputs)
    reproduced = sorted({e.label for e in effects if e.key == "gaussian_gain" and e.reproduced})
    report = {
        "kind": "paper",
        "name": NAME,
        "inputs": used,
        "paper_values_module": "cifar10_fgs/evaluate/paper.py",
        "rows": [asdict(x) for x in rows],
        "effects": [asdict(e) for e in effects],
        "gaussian_std": PAPER_STD,
        "reproduced_gaussian_variants": reproduced,
    }
    report["markdown"] = comparison_markdown(rows, effects, reproduced)
    json_path, md_path, _ = write_results(dataset_dir, NAME, report, {}, TITLE)
    return PaperComparison(json_path, md_path, tuple(rows), tuple(effects), report)


README_BEGIN = "<!-- paper-comparison:begin (generated by `cifar10-fgs evaluate paper --readme`; do not edit) -->"
README_END = "<!-- paper-comparison:end -->"


def splice_into_readme(readme: str | Path, comparison: PaperComparison, dataset_dir: str | Path) -> None:
    """Replace the text between the README's paper-comparison markers with the generated comparison."""
    body = (
        f"\n\nGenerated from `{Path(dataset_dir).name}/results/paper.json` "
        f"(inputs: {', '.join(f'`{n}.json`' for n in comparison.report['inputs']) or 'none'}).\n\n"
        f"{comparison.report['markdown'].strip()}\n\n"
    )
    splice_marked(readme, README_BEGIN, README_END, body, "paper-comparison")


def comparison_markdown(rows: Sequence[Row], effects: Sequence[Effect], gaussian_ok: Sequence[str]) -> str:
    mark = {True: "yes", False: "**no**", None: "not measured"}
    eff = md_table(
        ("Section", "Effect in the paper", "Run", "Ours", "Reproduced", "Why it differs"),
        [(e.section, e.claim, e.label or "—", e.ours, mark[e.reproduced], e.reason or "") for e in effects],
    )
    nums = md_table(
        ("Section", "Quantity", "Run", "Paper", "Ours", "Source"),
        [
            (
                x.section,
                x.quantity,
                x.label or "—",
                quantity(x.paper, x.unit, "not measured"),
                quantity(x.ours, x.unit, "not measured"),
                f"`{x.source}`" if x.source else "—",
            )
            for x in rows
        ],
    )
    variants = ", ".join(f"`{v}`" for v in gaussian_ok) or "none"
    return (
        "Every number of the paper beside ours; the paper's values are held in `cifar10_fgs/evaluate/paper.py`, "
        "ours are read from the results files named in *Source*. Written by `cifar10-fgs run` (or "
        "`cifar10-fgs evaluate paper`); rerun rather than edit.\n\n"
        f"Gaussian variants that reproduce the paper's gain at std {PAPER_STD:g} on the adversarial set: {variants}.\n\n"
        "### Effects\n\n" + eff + "\n### Numbers\n\n" + nums
    )
