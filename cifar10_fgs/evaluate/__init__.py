"""The evaluation suite of the paper (sections IV-VI): transfer, adversarial retraining, Gaussian filtering.

Rooms, in data-flow order:

* ``metrics``: pure functions over logits and images (accuracy, loss, confidence, random-sign control);
* ``filters``: the Gaussian filter as pure functions;
* ``joined``: the adversarial rows joined to the original split (the only reader of ``generation.json``);
* ``results``: results files (JSON, markdown, PNG), table helpers and the one claim (a results file made with
  other settings is kept); ``figures``: matplotlib figures saved as PNG;
* ``skeleton``: the one flow every evaluation follows (check, claim, load, report, write);
* ``transfer`` (section IV), ``retrain`` (section V), ``gaussian`` (section VI): the evaluations;
* ``paper``: the paper's numbers with their sections; ``comparison``: them beside ours (``results/paper.md``),
  with its row types in ``comparison_rows`` and its Gaussian section in ``comparison_gaussian``;
* ``leaderboard``: many models on one split, local or from the hub.

Results go to ``DIR/results/<name>.json`` (written last, sorted, atomically: settings, model
sha256s, library versions, numbers, and a ``markdown`` field holding ready tables),
``DIR/results/<name>.md`` and PNG plots beside them. A results file made with other settings is
never replaced unless ``overwrite=True``; rerunning the same settings recomputes the same numbers
and replaces them.

Each evaluation takes its dataset folder, then its models, then one frozen options dataclass
(``TransferOptions``, ``RetrainOptions``, ``GaussianOptions``, ``leaderboard.LeaderboardOptions``), all
extending ``skeleton.EvaluateOptions`` (the CIFAR-10, batch size, name, overwrite, progress ...).

The package exports the three evaluations of the paper, their options and results, every filter variant
(``ALL_VARIANTS``) and the paper comparison; the leaderboard and the helpers are imported from their modules.
"""

from cifar10_fgs.evaluate.comparison import PaperComparison, write_paper_comparison
from cifar10_fgs.evaluate.filters import ALL_VARIANTS
from cifar10_fgs.evaluate.gaussian import GaussianOptions, GaussianResult, evaluate_gaussian
from cifar10_fgs.evaluate.retrain import RetrainOptions, RetrainResult, evaluate_retrain
from cifar10_fgs.evaluate.skeleton import EvaluateOptions
from cifar10_fgs.evaluate.transfer import TransferOptions, TransferResult, evaluate_transfer

__all__ = [  # what the pipeline and the CLI call; everything else is imported from its own module
    "ALL_VARIANTS",
    "EvaluateOptions",
    "GaussianOptions",
    "GaussianResult",
    "PaperComparison",
    "RetrainOptions",
    "RetrainResult",
    "TransferOptions",
    "TransferResult",
    "evaluate_gaussian",
    "evaluate_retrain",
    "evaluate_transfer",
    "write_paper_comparison",
]
