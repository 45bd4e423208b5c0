"""The paper beside our measurements: ``DIR/results/paper.json`` and ``paper.md``, built from the results files.

Every number of ``paper.PAPER_VALUES`` gets a row with ours (or "not measured") and where ours comes from
(``<results file>#<path/with/slashes>`` or ``generation.json``). Each effect the paper draws from its numbers is
checked in direction and marked reproduced or not, with a one-line reason, computed from our numbers,
where it is not. Retraining rows come once per retraining mode found, Gaussian rows once per filter
variant, and the paper's two Gaussian trends are checked for every (variant, retrained network).

This module holds the attack (II), transfer (IV) and retraining (V) sections, the report, its markdown and the
README splice; the Gaussian section (VI) is ``comparison_gaussian``, the row and effect types ``comparison_rows``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from cifar10_fgs.evaluate.comparison_gaussian import gaussian_rows
from cifar10_fgs.evaluate.comparison_rows import Effect, ResultsFiles, Row, add_effect, add_row
from cifar10_fgs.evaluate.joined import Generation, read_generation
from cifar10_fgs.evaluate.paper import PAPER_STD
from cifar10_fgs.evaluate.results import claim_kind, md_table, write_results
from cifar10_fgs.formatting import fmt, quantity
from cifar10_fgs.provenance import splice_marked

log = logging.getLogger(__name__)

NAME = "paper"
TITLE = "Comparison with the paper"
DEFAULT_INPUTS = {"transfer": "transfer", "retrain": ("retrain", "retrain_mixed"), "gaussian": "gaussian"}


@dataclass(frozen=True)
class PaperComparison:
    json_path: str
    markdown_path: str
    rows: tuple[Row, ...]
    effects: tuple[Effect, ...]
    report: dict


def _attack(g: Generation, rows: list, effects: list) -> None:
    total = sum(s.num_rows for s in g.splits.values())
    failed = sum(len(s.failures) for s in g.splits.values())
    fooled = 100.0 * (total - failed) / total if total else None
    add_row(rows, "attack_step", g.attack_step, "generation.json" if g.attack_step is not None else None)
    add_row(rows, "perceptible_step", None, None)
    add_row(rows, "fooled_percent", fooled, "generation.json")
    secs = g.attack_seconds
    add_row(
        rows, "fgs_seconds_per_image", secs / total if secs and total else None, "generation.json" if secs else None
    )
    add_row(rows, "onepixel_seconds_per_image", None, None)
    add_row(
        rows,
        "attack_hours_60k",
        secs / 3600.0 if secs else None,
        "generation.json" if secs else None,
        f"{total} images" if total != 60000 else "",
    )
    add_effect(
        effects,
        "all_fooled",
        "",
        "II",
        "every image is perturbed until the source misclassifies it",
        f"{fooled:.2f}% of {total} images" if fooled is not None else "—",
        None if fooled is None else failed == 0,
        f"{failed} images were not fooled within the attack's iteration limit (listed in generation.json)",
    )


def _transfer(r: ResultsFiles, name: str, rows: list, effects: list) -> None:
    r.load(name)
    acc_o = add_row(rows, "target_original_accuracy", *r.get(name, "results/target/original/accuracy"))
    acc_a = add_row(rows, "target_adversarial_accuracy", *r.get(name, "results/target/adversarial/accuracy"))
    add_row(rows, "target_original_loss", *r.get(name, "results/target/original/loss"))
    add_row(rows, "target_adversarial_loss", *r.get(name, "results/target/adversarial/loss"))
    drop = add_row(rows, "target_accuracy_drop", *r.get(name, "results/target/accuracy_drop"))
    fooled = add_row(
        rows, "confidence_fooled", *r.get(name, "results/target/confidence/fooled/mean_original_confidence")
    )
    held = add_row(rows, "confidence_held", *r.get(name, "results/target/confidence/held/mean_original_confidence"))
    add_effect(
        effects,
        "transfer_drop",
        "",
        "IV",
        "the adversarial images lower the target's accuracy",
        f"{fmt(acc_o)} → {fmt(acc_a)}",
        None if drop is None else drop > 0,
        "the copies do not transfer to this target: its errors are not where the source's are",
    )
    add_effect(
        effects,
        "confidence",
        "",
        "IV",
        "copies that fool the target come from less confident originals",
        f"fooled {fmt(fooled)} vs held {fmt(held)}",
        None if fooled is None or held is None else fooled < held,
        "with few fooled rows the mean confidence is noisy; see the transfer confidence histogram",
    )


def _retrain(r: ResultsFiles, names: Sequence[str], rows: list, effects: list) -> dict:
    """Rows and effects per retraining mode found; returns {mode: retrained model sha256}."""
    found = {}
    for name in names:
        if r.load(name) is None:
            continue
        mode = r.files[name].get("results", {}).get("training", {}).get("mode", name)
        found[mode] = (r.files[name].get("models", {}).get("retrained") or {}).get("sha256")
        o = add_row(rows, "retrained_original_accuracy", *r.get(name, "results/retrained/original/accuracy"), mode)
        a = add_row(
            rows, "retrained_adversarial_accuracy", *r.get(name, "results/retrained/adversarial/accuracy"), mode
        )
        add_row(rows, "retrained_original_loss", *r.get(name, "results/retrained/original/loss"), mode)
        add_row(rows, "retrained_adversarial_loss", *r.get(name, "results/retrained/adversarial/loss"), mode)
        before = add_row(rows, "drop_before_retraining", *r.get(name, "results/accuracy_drop_before"), mode)
        after = add_row(rows, "drop_after_retraining", *r.get(name, "results/accuracy_drop_after"), mode)
        add_row(rows, "retraining_minutes", *r.get(name, "results/training/minutes"), mode)
        to, _ = r.get(name, "results/target/original/accuracy")
        ta, _ = r.get(name, "results/target/adversarial/accuracy")
        add_effect(
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
            add_effect(
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


def build_comparison(dataset_dir: str | Path, inputs: dict | None = None) -> tuple[list[Row], list[Effect], dict]:
    """Rows, effects and the results files read (name -> settings_sha256) for the folder."""
    dataset_dir = Path(dataset_dir)
    inputs = {**DEFAULT_INPUTS, **(inputs or {})}
    r = ResultsFiles(dataset_dir)
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
        gaussian_rows(r.files[inputs["gaussian"]], inputs["gaussian"], target_sha, retrained, rows, effects)
    else:
        for key in (
            "gaussian_target_adversarial_no_filter",
            "gaussian_target_adversarial_std_0.5",
            "gaussian_gain_std_0.5",
            "gaussian_ms_per_image",
        ):
            add_row(rows, key, None, None)
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
