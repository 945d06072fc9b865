"""Errors, TensorFlow's quiet start-up, run-folder files, the checkpoint file format."""
