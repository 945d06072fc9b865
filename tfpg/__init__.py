"""tfpg: policy-gradient and DQN reinforcement learning for TensorFlow 2 and Keras 3."""
import os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines, oneDNN notices) hides the
# messages that matter. TFPG_TF_LOGS=1 shows it (and tfpg.core.quiet then filters nothing).
SHOW_TF_LOGS = os.environ.get("TFPG_TF_LOGS", "") not in ("", "0")
if not SHOW_TF_LOGS:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.2.0"
