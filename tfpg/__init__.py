"""tfpg: policy-gradient and DQN reinforcement learning for TensorFlow 2 and Keras 3."""
import os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines, oneDNN notices) hides the
# messages that matter; users can still lower the level by setting the variable themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
