"""cifar10-fgs: an adversarial CIFAR-10 made with an untargeted iterative fast gradient sign attack.

Stages, each a plain function over arrays or paths: ``data.load_cifar10`` -> ``training.train_model``
-> ``generate.generate_dataset`` -> ``validate.validate_dataset`` -> ``card.write_card`` ->
``upload.upload_dataset``; ``evaluate`` reads the shards back through ``datasets.load_dataset``.
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
