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


def nature_cnn(input_shape: Sequence[int], hidden: Sequence[int], output_dim: int, name: str = "cnn",
               output_scale: float = 1.0) -> keras.Model:
    """The Nature-DQN torso (Mnih et al. 2015) with a linear head of `output_dim` outputs.

    uint8 frames (C, H, W) -> x / 255 -> conv 32 8x8 stride 4 -> conv 64 4x4 stride 2
    -> conv 64 3x3 stride 1 -> flatten -> [Dense(h, relu) for h in hidden] -> Dense(output_dim)

    The paper's dense layer is hidden = (512,). Input stays uint8 up to the model (4x less to copy
    and store than float32) and is scaled here, so an exported model takes raw frames. Frames arrive
    channels-first as gymnasium stacks them; they are transposed to channels-last, the layout
    TensorFlow's CPU convolutions support.
    """
    inputs = keras.Input(shape=tuple(input_shape), dtype="uint8", name="observations")
    x = keras.layers.Rescaling(1.0 / 255.0, name="scale")(inputs)   # casts uint8 to float32 first
    x = keras.layers.Permute((2, 3, 1), name="channels_last")(x)
    for i, (filters, kernel, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
        x = keras.layers.Conv2D(filters, kernel, strides=stride, activation="relu", name=f"conv_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, width in enumerate(hidden):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{i}")(x)
    init = keras.initializers.VarianceScaling(scale=output_scale, mode="fan_avg", distribution="uniform")
    outputs = keras.layers.Dense(output_dim, kernel_initializer=init, name="out")(x)
    return keras.Model(inputs, outputs, name=name)


def is_image_space(space) -> bool:
    """A 3-D uint8 Box: stacked frames (C, H, W), fed to the CNN."""
    import gymnasium as gym
    import numpy as np

    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8


def torso_for(observation_space, hidden: Sequence[int], output_dim: int, name: str,
              output_scale: float = 1.0, activation: str = "relu") -> keras.Model:
    """The network for an observation space: the Nature CNN for stacked uint8 frames (C, H, W),
    an MLP for flat Box observations; anything else is a ConfigError."""
    import gymnasium as gym

    from tfpg.core.errors import ConfigError

    shape = getattr(observation_space, "shape", None)
    if is_image_space(observation_space):
        if min(shape[1:]) < 36:
            raise ConfigError(f"the Nature CNN needs frames of at least 36x36 pixels, got {observation_space}")
        return nature_cnn(shape, hidden, output_dim, name=name, output_scale=output_scale)
    if isinstance(observation_space, gym.spaces.Box) and len(shape) == 1:
        return mlp(int(shape[0]), hidden, output_dim, name=name, output_scale=output_scale, activation=activation)
    raise ConfigError(f"tfpg's networks take flat Box observations (MLP) or stacked uint8 frames (C, H, W) (CNN), "
                      f"got {observation_space}")
