"""Generating the adversarial dataset: ``core`` (the command's flow), ``check`` (the source model's check),
``originals`` (the source model's logits on the originals, predicted once), ``stream`` (attack to shards),
``writer`` (shards and the manifest written as they finish), ``combine`` (merging sharded runs)."""

from cifar10_fgs.generate.core import GenerateOptions, generate_dataset

__all__ = ["GenerateOptions", "generate_dataset"]
