"""cifar10-fgs: an adversarial CIFAR-10 made with an untargeted iterative fast gradient sign attack.

The stages, each a plain function over arrays or paths, in data-flow order::

    load_cifar10 -> train_model / load_model -> generate_dataset -> validate_dataset
                 -> evaluate_transfer / evaluate_retrain / evaluate_gaussian / evaluate_leaderboard
                 -> run_pipeline (all of it)

Every entry point takes the dataset folder (``dataset_dir``) first, then its models, then one options
dataclass. One name per thing: ``cifar10`` is the CIFAR-10 input, ``source_model`` the attacked model.

The public names:

* ``load_cifar10(cifar10, split)``: one CIFAR-10 split (``Cifar10Split``) from a path, ``hub:...`` or ``keras``;
* ``load_model(path)``: a ``.keras`` model, in Keras safe mode, its shapes checked;
* ``train_model(train, test, out, arch=...)``: train the source or target network and save it with its provenance;
* ``AttackConfig``: the attack's settings (step, iterations, batch size ...), the ``attack`` of ``GenerateOptions``;
* ``InputConvention``: how a model takes its pixels and what it returns (layout, scale, mean/std, output);
* ``attack(model, images, labels, *, convention=None, **settings)``: the attack on a batch in memory, one call
  (a ``keras.Model`` or ``.keras`` path fed by its input convention; returns the ``AttackRecord``);
* ``GenerateOptions``, ``generate_dataset(dataset_dir, source_model, options)``: attack CIFAR-10 into a dataset folder;
* ``validate_dataset(dataset_dir, source_model=None, *, cifar10=None)``: re-prove a dataset folder (a report);
* ``TransferOptions``, ``evaluate_transfer(dataset_dir, target_model, options)``: transfer to a target (section IV);
* ``RetrainOptions``, ``evaluate_retrain(dataset_dir, retrained_model, options)``: adversarial retraining (V);
* ``GaussianOptions``, ``evaluate_gaussian(dataset_dir, models, options)``: the Gaussian filter defence (VI);
* ``LeaderboardOptions``, ``evaluate_leaderboard(dataset_dir, models, options)``: many models on one split;
* ``RunOptions``, ``run_pipeline(workspace, options)``: every stage, resumable;
* ``__version__``.

Importing this package loads no TensorFlow: each entry point is imported on first use.
"""

import importlib
import logging

__version__ = "0.1.0"

_PUBLIC = {
    "load_cifar10": "cifar10_fgs.data",
    "load_model": "cifar10_fgs.models.networks",
    "train_model": "cifar10_fgs.training.train",
    "AttackConfig": "cifar10_fgs.config",
    "InputConvention": "cifar10_fgs.models.convention",
    "attack": "cifar10_fgs.attack",  # the subpackage itself, callable: cifar10_fgs.attack(model, images, labels)
    "GenerateOptions": "cifar10_fgs.generate.core",
    "generate_dataset": "cifar10_fgs.generate.core",
    "validate_dataset": "cifar10_fgs.validate",
    "TransferOptions": "cifar10_fgs.evaluate.transfer",
    "evaluate_transfer": "cifar10_fgs.evaluate.transfer",
    "RetrainOptions": "cifar10_fgs.evaluate.retrain",
    "evaluate_retrain": "cifar10_fgs.evaluate.retrain",
    "GaussianOptions": "cifar10_fgs.evaluate.gaussian",
    "evaluate_gaussian": "cifar10_fgs.evaluate.gaussian",
    "LeaderboardOptions": "cifar10_fgs.evaluate.leaderboard",
    "evaluate_leaderboard": "cifar10_fgs.evaluate.leaderboard",
    "RunOptions": "cifar10_fgs.pipeline",
    "run_pipeline": "cifar10_fgs.pipeline",
}
__all__ = ["__version__", *_PUBLIC]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_PUBLIC[name])
    return module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)


def __dir__():
    return sorted(__all__)
