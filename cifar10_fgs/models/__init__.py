"""Models: the two networks and flip averaging (``networks``), batched inference (``inference``), how a model
takes its pixels (``convention``; a Keras model fed by it: ``keras_input``), and models only run forward, Keras
or ONNX (``forward``, ``onnx_model``)."""

from cifar10_fgs.models.networks import architecture, build_model, flip_averaged, load_model, network_of

__all__ = ["architecture", "build_model", "flip_averaged", "load_model", "network_of"]
