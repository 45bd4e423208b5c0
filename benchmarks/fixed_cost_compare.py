"""Fixed cost of two checkouts of the package, measured alternately in one session: medians and their ratio.

    python benchmarks/fixed_cost_compare.py --before OLD_CHECKOUT --after NEW_CHECKOUT [--reps 3] \\
        -- --source-model SOURCE.keras --cifar10 DATA --split test

Each repetition runs ``benchmarks/fixed_cost.py`` (of this checkout) once per side, in a fresh process
whose ``PYTHONPATH`` starts with that side's checkout, before then after, so both sides see the same
machine load. Prints one row per run and the medians as a markdown table, the ratio after / before, and
whether every run wrote the same shard bytes. ``--json`` keeps every run's output.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ("import", "model_load", "data", "trace", "predict", "probe", "padding", "write", "other")


def run_once(checkout: Path, args: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="fixed-cost-compare-") as tmp:
        out = Path(tmp) / "run.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), os.environ.get("PYTHONPATH", "")])}
        subprocess.run(
            [sys.executable, str(HERE / "fixed_cost.py"), *args, "--json", str(out)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return json.loads(out.read_text())


def row(name: str, r: dict) -> str:
    parts = r["fixed_cost_parts_s"]
    cells = [f"{parts.get(p, 0.0):.1f}" for p in PARTS]
    return (
        f"| {name} | {r['wall_s']:.1f} | {r['ceiling_img_per_s']:.0f} | {r['gradient_work_s']:.1f} | "
        f"**{r['fixed_cost_s']:.1f}** | " + " | ".join(cells) + f" | {int(r['rows_evaluated']):,} |"
    )


def median_run(runs: list[dict]) -> dict:
    keys = ("wall_s", "ceiling_img_per_s", "gradient_work_s", "fixed_cost_s", "rows_evaluated")
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    med["fixed_cost_parts_s"] = {p: statistics.median(r["fixed_cost_parts_s"].get(p, 0.0) for r in runs) for p in PARTS}
    return med


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ours, theirs = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, type=Path, help="a checkout of the package before the change")
    p.add_argument("--after", required=True, type=Path, help="a checkout of the package after the change")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", type=Path, default=None, help="write every run's result here")
    args = p.parse_args(ours)
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for i in range(args.reps):
        for side in ("before", "after"):
            runs[side].append(run_once(getattr(args, side).resolve(), theirs))
            print(f"rep {i + 1} {side}: fixed cost {runs[side][-1]['fixed_cost_s']:.1f} s", file=sys.stderr)
    header = (
        "| run | wall s | ceiling img/s | gradient work s | fixed cost s | " + " | ".join(PARTS) + " | rows evaluated |"
    )
    print(header)
    print("|" + "---|" * (len(PARTS) + 6))
    for side in ("before", "after"):
        for i, r in enumerate(runs[side]):
            print(row(f"{side} {i + 1}", r))
    medians = {side: median_run(runs[side]) for side in runs}
    for side in ("before", "after"):
        print(row(f"{side}, median", medians[side]))
    ratio = medians["after"]["fixed_cost_s"] / medians["before"]["fixed_cost_s"]
    digests = {json.dumps(r["shards_sha256"], sort_keys=True) for side in runs for r in runs[side]}
    print(f"\nfixed cost after / before (medians): {ratio:.2f}")
    print(f"shards identical in all {2 * args.reps} runs: {len(digests) == 1}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
