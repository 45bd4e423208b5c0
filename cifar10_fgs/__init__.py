"""cifar10-fgs: an adversarial CIFAR-10 made with an untargeted iterative fast gradient sign attack.

The stages, each a plain function over arrays or paths, in data-flow order::

    load_cifar10 -> train_model / load_model -> generate_dataset -> validate_dataset
                 -> evaluate_transfer / evaluate_leaderboard -> run_pipeline (all of it)

and the attack itself on a batch in memory, any Keras model fed by its declared input convention::

    record = cifar10_fgs.attack(model, images, labels)  # uint8 (N, 32, 32, 3), (N,) -> AttackRecord

Importing this package loads no TensorFlow: each entry point is imported on first use.
"""

import importlib
import logging

__version__ = "0.1.0"

_PUBLIC = {
    "load_cifar10": "cifar10_fgs.data",
    "load_model": "cifar10_fgs.models.networks",
    "InputConvention": "cifar10_fgs.models.convention",
    "attack": "cifar10_fgs.attack",  # the subpackage itself, callable: cifar10_fgs.attack(model, images, labels)
    "AttackConfig": "cifar10_fgs.config",
    "train_model": "cifar10_fgs.training.train",
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
