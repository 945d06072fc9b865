"""Returns, GAE, losses, the natural gradient, schedules: numpy and TensorFlow, no networks."""
