"""Section VI of the paper comparison: the Gaussian filter's rows and effects for every filter variant of
``gaussian.json``, and the paper's two trends for every (variant, retrained network).
"""

from __future__ import annotations

from cifar10_fgs.evaluate.comparison_rows import add_effect, add_row
from cifar10_fgs.evaluate.paper import PAPER_STD
from cifar10_fgs.formatting import fmt


def _gaussian_roles(g: dict, target_sha: str | None, retrained: dict) -> tuple[str | None, dict]:
    """(label of the original target in gaussian.json, {retraining mode: label}) matched by model sha256."""
    by_sha = {info.get("sha256"): label for label, info in g.get("models", {}).items()}
    target = by_sha.get(target_sha) or ("target" if "target" in g.get("models", {}) else None)
    return target, {mode: by_sha[sha] for mode, sha in retrained.items() if sha in by_sha}


def gaussian_rows(g: dict, name: str, target_sha: str | None, retrained: dict, rows: list, effects: list) -> None:
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
        add_row(rows, "gaussian_target_adversarial_no_filter", base, src0, v)
        add_row(rows, "gaussian_target_adversarial_std_0.5", mid, src5, v)
        gain_src = f"{name}.json#results/variants/{v}/recovered_on_adversarial/{target}/{PAPER_STD:g}"
        gain = (info.get("recovered_on_adversarial", {}).get(target) or {}).get(f"{PAPER_STD:g}")
        add_row(rows, "gaussian_gain_std_0.5", gain, gain_src if gain is not None else None, v)
        costs = {s: ms for s, ms in info.get("ms_per_image_batched", {}).items() if float(s) > 0}
        worst = max(costs, key=lambda s: costs[s], default=None)
        add_row(
            rows,
            "gaussian_ms_per_image",
            costs.get(worst),
            f"{name}.json#results/variants/{v}/ms_per_image_batched/{worst}" if worst else None,
            v,
        )
        orig0, orig5 = at(target, "original", 0.0)[0], at(target, "original", PAPER_STD)[0]
        add_effect(
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
        add_effect(
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
        add_effect(
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
    add_effect(
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
    add_effect(
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
