"""tfpg: policy-gradient and DQN reinforcement learning for TensorFlow 2 and Keras 3."""
from tfpg.core.quiet import SHOW_TF_LOGS, hide_cpp_start_up_logs

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines, oneDNN notices) hides the
# messages that matter; TFPG_TF_LOGS=1 shows it.
hide_cpp_start_up_logs()

__version__ = "0.2.0"
__all__ = ["SHOW_TF_LOGS", "__version__"]
