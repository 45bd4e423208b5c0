"""Training a model with its recipe: ``train`` (resumable, checkpointed), ``history`` (one row per epoch),
``averaging`` (cycle-end snapshots and weight averaging)."""

from cifar10_fgs.training.train import train_model

__all__ = ["train_model"]
