"""Ops behind the critic's hot spots, native when built, plain PyTorch otherwise."""
from gantools.ops._backend import backends as backend
from gantools.ops.bias_leaky_relu import bias_leaky_relu
from gantools.ops.gradient_penalty import gradient_penalty, penalty_from_grad
from gantools.ops.layer_norm_leaky_relu import layer_norm_leaky_relu

__all__ = ["backend", "bias_leaky_relu", "gradient_penalty", "layer_norm_leaky_relu", "penalty_from_grad"]
