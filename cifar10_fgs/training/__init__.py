"""Training a model with its recipe: ``train`` (resumable, checkpointed), ``fitting`` (the fit's Keras pieces:
schedule, optimizer, data pipeline, callbacks), ``init_from`` (continuing a saved model), ``saved`` (the saved
model and its ``MODEL.json``), ``history`` (one row per epoch), ``averaging`` (cycle-end snapshots and weight
averaging)."""

from cifar10_fgs.training.train import train_model

__all__ = ["train_model"]
