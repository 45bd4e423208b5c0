"""Generating the adversarial dataset: ``core`` (the command's flow), ``stream`` (attack to shards),
``combine`` (merging sharded runs)."""

from cifar10_fgs.generate.core import GenerateOptions, generate_dataset

__all__ = ["GenerateOptions", "generate_dataset"]
