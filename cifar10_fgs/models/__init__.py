"""The two networks (EfficientNetB0 source, the paper's simple deep CNN), flip averaging, and batched inference."""

from cifar10_fgs.models.networks import architecture, build_model, flip_averaged, load_model, network_of

__all__ = ["architecture", "build_model", "flip_averaged", "load_model", "network_of"]
