"""Keras 3 network bodies shared by policies, critics and Q-networks."""
from __future__ import annotations

from collections.abc import Sequence

import keras


def mlp(input_dim: int, hidden: Sequence[int], output_dim: int, name: str = "mlp",
        output_scale: float = 1.0, activation: str = "relu") -> keras.Model:
    """x -> [Dense(h, activation)]* -> Dense(output_dim), linear output.

    `output_scale` shrinks the initial output layer (0.01 gives a near-uniform initial policy).
    """
    inputs = keras.Input(shape=(input_dim,), dtype="float32", name="observations")
    x = inputs
    for i, width in enumerate(hidden):
        x = keras.layers.Dense(width, activation=activation, name=f"dense_{i}")(x)
    init = keras.initializers.VarianceScaling(scale=output_scale, mode="fan_avg", distribution="uniform")
    outputs = keras.layers.Dense(output_dim, kernel_initializer=init, name="out")(x)
    return keras.Model(inputs, outputs, name=name)
