"""Building gymnasium envs (Atari too), the stepping core, envs written as TensorFlow ops."""
