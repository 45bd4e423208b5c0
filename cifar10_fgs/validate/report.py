"""The validation report: every check with what it asserts, the failures, and their bookkeeping."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from cifar10_fgs.config import NORM_TOLERANCE
from cifar10_fgs.errors import ValidationError

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

# Every check, in report order, with what it asserts.
CHECKS: dict[str, str] = {
    "manifest": "generation.json is well-formed, consistent with its config and complete",
    "shard_files": "every shard of every split is present in data/, nothing else is",
    "shard_integrity": "each shard's byte size and sha256 equal generation.json",
    "shard_schema": "each shard is a readable Arrow stream with the expected features and row count",
    "images": "every image decodes from its PNG bytes to 32x32x3 uint8",
    "values": "labels and predictions are classes 0-9; iterations, confidences and distances in range",
    "stored_predictions": "stored adversarial_prediction differs from the label and agrees with iterations",
    "indices": "every index lies in its shard's row range and appears once",
    "coverage": "stored indices plus listed failures cover each split's CIFAR-10 rows (all, or the --limit subset) once",
    "model_file": "the --source-model file is the generating model (sha256 equals config.model_sha256)",
    "misclassified": "the model misclassifies every stored image",
    "adversarial_prediction": "the model predicts the stored adversarial_prediction (and confidence)",
    "source_fingerprint": "the --cifar10 split has the fingerprint recorded in generation.json",
    "perturbation": f"stored linf and l2 equal the recomputed distances to the original (within {NORM_TOLERANCE:g})",
    "perturbation_bound": "fgs: linf <= step * iterations + 0.5 / pixel range, and <= max_linf when set; onepixel: "
    "one pixel changed at most",
    "unchanged_rows": "rows with iterations == 0 equal their original exactly",
    "original_image": "the original_image column equals the original",
    "card": "README.md dataset_info split sizes equal the row counts and its features name the columns",
}
MODEL_CHECKS = ("misclassified", "adversarial_prediction")
ORIGINALS_CHECKS = ("perturbation", "perturbation_bound", "unchanged_rows", "original_image")
# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Failure:
    """One failed assertion; ``shard`` is the name relative to DIR, ``row`` its 0-based row."""

    check: str
    message: str
    split: str | None = None
    shard: str | None = None
    row: int | None = None
    index: int | None = None  # row of the original split, where known

    @property
    def location(self) -> str:
        parts = []
        if self.shard is not None:
            parts.append(self.shard)
        elif self.split is not None:
            parts.append(self.split)
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.index is not None:
            parts.append(f"index {self.index}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)  # every field, in order


@dataclass(frozen=True)
class CheckResult:
    name: str
    description: str
    status: str  # passed | failed | skipped
    checked: int  # items examined (rows, shards, splits or files, depending on the check)
    failures: int
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)  # every field, in order


@dataclass(frozen=True)
class SplitCounts:
    split: str
    num_rows: int  # original rows attacked (config.splits[split].num_rows)
    stored_rows: int  # rows in the shards (unreadable or missing shards count as generation.json says)
    listed_failures: int  # rows generation.json lists as not fooled
    num_shards: int

    def to_dict(self) -> dict:
        return asdict(self)  # every field, in order


@dataclass(frozen=True)
class ValidationReport:
    dataset_dir: str  # the folder checked, or hub:USER/NAME@<commit>
    checks: tuple[CheckResult, ...]
    failures: tuple[Failure, ...]
    splits: tuple[SplitCounts, ...]
    source_model: str | None
    model_sha256: str | None
    cifar10: str | None
    seconds: float
    library_versions: dict = field(default_factory=dict)
    commit: str | None = None  # the hub commit checked, for a hub:USER/NAME copy (see hub.validate_hub)

    @property
    def ok(self) -> bool:
        return not self.failures and all(c.status != FAILED for c in self.checks)

    @property
    def failed_checks(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if c.status == FAILED)

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    def failures_of(self, check: str) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.check == check)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "directory": self.dataset_dir,
            "failed_checks": list(self.failed_checks),
            "checks": [c.to_dict() for c in self.checks],
            "failures": [f.to_dict() for f in self.failures],
            "splits": {s.split: s.to_dict() for s in self.splits},
            "model": self.source_model,
            "model_sha256": self.model_sha256,
            "source": self.cifar10,
            "seconds": round(self.seconds, 3),
            "library_versions": dict(self.library_versions),
            "commit": self.commit,
        }

    def summary_line(self) -> str:
        if self.ok:
            skipped = sum(c.status == SKIPPED for c in self.checks)
            return f"{self.dataset_dir}: all {len(self.checks) - skipped} checks passed ({skipped} skipped)"
        names = ", ".join(self.failed_checks)
        return f"{self.dataset_dir}: {len(self.failures)} failures in checks {names}"

    def raise_for_failures(self) -> None:
        """Raise ``ValidationError`` (exit code 1) unless every check held."""

        if not self.ok:
            first = self.failures[0] if self.failures else None
            where = f"; first: {first.location + ': ' if first.location else ''}{first.message}" if first else ""
            raise ValidationError(
                f"{self.dataset_dir} failed validation ({len(self.failures)} failures in {', '.join(self.failed_checks)}"
                f"{where}): repair or regenerate the dataset"
            )


class Collector:
    """Mutable bookkeeping while checking; frozen into a ValidationReport at the end."""

    def __init__(self):
        self.failures: list[Failure] = []
        self.counts: dict[str, int] = dict.fromkeys(CHECKS, 0)
        self.failed: dict[str, int] = dict.fromkeys(CHECKS, 0)
        self.skipped: dict[str, str] = {}

    def fail(self, check: str, message: str, **where) -> None:
        assert check in CHECKS, check
        self.failures.append(Failure(check, message, **where))
        self.failed[check] += 1

    def checked(self, check: str, n: int = 1) -> None:
        self.counts[check] += int(n)

    def skip(self, check: str, note: str) -> None:
        self.skipped.setdefault(check, note)

    def sorted_failures(self) -> tuple[Failure, ...]:
        """Failures grouped by check (in CHECKS order), then by shard and row."""
        order = {name: i for i, name in enumerate(CHECKS)}
        return tuple(
            sorted(
                self.failures,
                key=lambda f: (
                    order[f.check],
                    f.shard or "",
                    -1 if f.row is None else f.row,
                    -1 if f.index is None else f.index,
                ),
            )
        )

    def results(self) -> tuple[CheckResult, ...]:
        out = []
        for name, desc in CHECKS.items():
            if self.failed[name]:
                status = FAILED
            elif name in self.skipped and not self.counts[name]:
                status = SKIPPED
            else:
                status = PASSED
            # a note also on checks that ran for some splits but were skipped for others
            out.append(
                CheckResult(name, desc, status, self.counts[name], self.failed[name], self.skipped.get(name, ""))
            )
        return tuple(out)
