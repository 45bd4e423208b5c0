"""The evaluation suite of the paper (sections IV-VI): transfer, adversarial retraining, Gaussian filtering.

Rooms, in data-flow order:

* ``metrics``: pure functions over logits and images (accuracy, loss, confidence, random-sign control);
* ``filters``: the Gaussian filter as pure functions;
* ``joined``: the adversarial rows joined to the original split (the only reader of ``generation.json``);
* ``results``: results files (JSON, markdown, PNG) and table helpers;
* ``skeleton``: the one flow every evaluation follows (check, claim, load, report, write);
* ``transfer`` (section IV), ``retrain`` (section V), ``gaussian`` (section VI): the evaluations;
* ``paper``: the paper's numbers with their sections; ``comparison``: them beside ours (``results/paper.md``).

Results go to ``DIR/results/<name>.json`` (written last, sorted, atomically: settings, model
sha256s, library versions, numbers, and a ``markdown`` field holding ready tables),
``DIR/results/<name>.md`` and PNG plots beside them. A results file made with other settings is
never replaced unless ``overwrite=True``; rerunning the same settings recomputes the same numbers
and replaces them.

Each evaluation takes its models and dataset plus one frozen options dataclass (``TransferOptions``,
``RetrainOptions``, ``GaussianOptions``, ``leaderboard.LeaderboardOptions``), all extending
``skeleton.EvaluateOptions`` (the CIFAR-10, batch size, name, overwrite, progress ...).
"""

from cifar10_fgs.evaluate.comparison import PaperComparison, build_comparison, write_paper_comparison
from cifar10_fgs.evaluate.filters import (
    ALL_VARIANTS,
    GaussianVariant,
    blur,
    check_stds,
    check_variants,
    gaussian_blur,
)
from cifar10_fgs.evaluate.gaussian import (
    GaussianOptions,
    GaussianResult,
    GaussianRow,
    cost_key,
    evaluate_gaussian,
    model_labels,
    time_blur_single,
)
from cifar10_fgs.evaluate.joined import (
    Generation,
    JoinedSplit,
    SplitGeneration,
    check_split_generated,
    dataset_identity,
    join_split,
    load_adversarial,
    load_joined,
    load_original,
    read_generation,
)
from cifar10_fgs.evaluate.metrics import (
    CONFIDENCE_GROUPS,
    SETS,
    Classification,
    SetMetrics,
    classify,
    confidence_split,
    linf_levels,
    log_softmax,
    per_class_accuracy,
    random_sign_control,
)
from cifar10_fgs.evaluate.paper import PAPER, PAPER_VALUES, PaperValue
from cifar10_fgs.evaluate.results import check_name, results_paths
from cifar10_fgs.evaluate.retrain import (
    RETRAIN_MODES,
    RetrainMode,
    RetrainOptions,
    RetrainResult,
    device_description,
    evaluate_retrain,
    retrain_split,
)
from cifar10_fgs.evaluate.skeleton import EvaluateOptions
from cifar10_fgs.evaluate.transfer import TransferOptions, TransferResult, evaluate_transfer

__all__ = [
    "PAPER",
    "PAPER_VALUES",
    "PaperComparison",
    "PaperValue",
    "build_comparison",
    "write_paper_comparison",
    "ALL_VARIANTS",
    "GaussianVariant",
    "blur",
    "check_variants",
    "cost_key",
    "CONFIDENCE_GROUPS",
    "Classification",
    "EvaluateOptions",
    "Generation",
    "GaussianOptions",
    "GaussianResult",
    "GaussianRow",
    "JoinedSplit",
    "RETRAIN_MODES",
    "RetrainMode",
    "RetrainOptions",
    "RetrainResult",
    "SETS",
    "SetMetrics",
    "SplitGeneration",
    "TransferOptions",
    "TransferResult",
    "check_name",
    "check_split_generated",
    "check_stds",
    "classify",
    "confidence_split",
    "dataset_identity",
    "device_description",
    "evaluate_gaussian",
    "evaluate_retrain",
    "evaluate_transfer",
    "gaussian_blur",
    "join_split",
    "linf_levels",
    "load_adversarial",
    "load_joined",
    "load_original",
    "log_softmax",
    "model_labels",
    "per_class_accuracy",
    "random_sign_control",
    "read_generation",
    "results_paths",
    "retrain_split",
    "time_blur_single",
]
