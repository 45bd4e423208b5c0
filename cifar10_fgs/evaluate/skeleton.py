"""The one flow every evaluation follows (transfer, retrain, gaussian), and the options they share.

Each evaluation takes its dataset folder and models, plus one frozen options dataclass: a subclass of
:class:`EvaluateOptions` (``TransferOptions``, ``RetrainOptions``, ``GaussianOptions``,
``LeaderboardOptions``) that adds that evaluation's own fields.

    ev = begin(kind, dataset_dir, name, splits, batch_size)   # check arguments, read generation.json
    ev = ev.claim(settings, models, overwrite)                # settings key; refuse foreign results
    joined, cifar10 = ev.load(options)                         # the adversarial rows joined to the originals
    report = ev.report(joined, cifar10, definitions, results)  # the common JSON, plus this evaluation's part
    files = ev.write(report, markdown, figures, title)        # PNGs, NAME.md, NAME.json (last)

The settings key is claimed before any heavy work, so a results file made with other settings is never
replaced unless ``overwrite`` is given, and a rerun with the same settings recomputes and replaces it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cifar10_fgs.config import PREDICT_BATCH_SIZE, check_batch_size, check_flags
from cifar10_fgs.evaluate.joined import (
    Generation,
    check_split_generated,
    dataset_identity,
    load_joined,
    read_generation,
)
from cifar10_fgs.evaluate.results import check_name, claim_results, settings_key, write_results
from cifar10_fgs.models.convention import Declared
from cifar10_fgs.provenance import library_versions

METRIC_DEFINITIONS = {
    "accuracy": "mean over rows of argmax(logits) == label",
    "loss": "mean over rows of the cross-entropy logsumexp(logits) - logits[label]",
    "mean_confidence": "mean over rows of max(softmax(logits))",
    "accuracy_drop": "accuracy on the original images minus accuracy on their adversarial copies (same rows)",
}


@dataclass(frozen=True)
class EvaluateOptions:
    """What every evaluation takes besides its models and dataset (subclasses add their own fields)."""

    cifar10: str | Path | None = None  # the original CIFAR-10 (a path, hub:..., keras); None: generation.json's
    batch_size: int = PREDICT_BATCH_SIZE  # images per inference call
    name: str | None = None  # results/<name>.*; each subclass sets its evaluation's default
    overwrite: bool = False  # replace results made with other settings
    unsafe_model: bool = False  # allow models with Lambda layers (runs code from the file)
    progress: bool = False  # progress bars
    cache_dir: str | None = None  # the datasets cache for the adversarial shards (None: the usual one)
    model_input: Declared | None = None  # how the models take their pixels (models.convention); None: as they declare

    def __post_init__(self):
        check_flags(self)  # overwrite="False" would replace results


@dataclass(frozen=True)
class EvaluationFiles:
    """The head of every evaluation's result: its name and the files it wrote (``results/<name>.*``)."""

    name: str
    json_path: str
    markdown_path: str
    plots: tuple[str, ...]

    def files(self) -> dict:
        """These four fields by name, to build a result that extends this head: ``Result(**w.files(), ...)``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(EvaluationFiles)}


@dataclass(frozen=True)
class Evaluation:
    kind: str  # transfer | retrain | gaussian
    name: str  # results/<name>.json
    dataset_dir: Path
    splits: tuple[str, ...]
    generation: Generation
    started: float  # time.time() at begin
    settings: dict | None = None  # set by claim
    models: dict | None = None  # role -> {path, file, sha256, architecture}
    dataset: dict | None = None  # dataset_identity
    key: str | None = None  # settings_sha256

    def claim(self, settings: dict, models: dict, overwrite: bool) -> Evaluation:
        dataset = dataset_identity(self.dataset_dir, self.generation, self.splits)
        key = settings_key(self.kind, settings, models, dataset)
        claim_results(self.dataset_dir, self.name, key, overwrite)
        return dataclasses.replace(self, settings=settings, models=models, dataset=dataset, key=key)

    def load(self, options: EvaluateOptions) -> tuple[dict, str]:
        """(the splits joined to their originals from ``options.cifar10``, the CIFAR-10 used)."""
        joined, _, cifar10 = load_joined(
            self.dataset_dir, self.splits, options.cifar10, cache_dir=options.cache_dir, progress=options.progress
        )
        return joined, cifar10

    def report(self, joined: dict, cifar10: str, definitions: dict, results: dict) -> dict:
        """The results JSON: the common part (identities, rows, versions) and this evaluation's numbers."""
        return {
            "kind": self.kind,
            "name": self.name,
            "settings": self.settings,
            "settings_sha256": self.key,
            "models": self.models,
            "dataset": self.dataset,
            "data_source": {
                "source": cifar10,
                "fingerprints": {s: j.original_split.fingerprint() for s, j in joined.items()},
            },
            "rows": {
                s: {"num_rows_split": j.num_rows_split, "num_rows_used": len(j), "failures_absent": len(j.failures)}
                for s, j in joined.items()
            },
            "library_versions": library_versions(),
            "metric_definitions": METRIC_DEFINITIONS,
            "definitions": definitions,
            "results": results,
        }

    def write(self, report: dict, markdown: str, figures: dict, title: str) -> EvaluationFiles:
        """Add the time and ``markdown`` to ``report`` and write the figures, NAME.md and NAME.json (last)."""
        report["seconds"] = round(time.time() - self.started, 2)
        report["markdown"] = markdown
        json_path, md_path, plots = write_results(self.dataset_dir, self.name, report, figures, title)
        return EvaluationFiles(name=self.name, json_path=json_path, markdown_path=md_path, plots=plots)


def begin(kind: str, dataset_dir, name: str, splits: Sequence[str], batch_size: int) -> Evaluation:
    """Check the common arguments and that ``splits`` were generated and finished."""
    started = time.time()
    dataset_dir = Path(dataset_dir)
    check_name(name)
    check_batch_size(batch_size)
    generation = read_generation(dataset_dir)
    for s in splits:
        check_split_generated(dataset_dir, generation, s)
    return Evaluation(kind, name, dataset_dir, tuple(splits), generation, started)
