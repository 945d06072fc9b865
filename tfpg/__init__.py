"""tfpg: policy-gradient and DQN reinforcement learning for TensorFlow 2 and Keras 3."""
from tfpg.core.quiet import SHOW_TF_LOGS, hide_cpp_start_up_logs

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines, oneDNN notices) hides the
# messages that matter; TFPG_TF_LOGS=1 shows it.
hide_cpp_start_up_logs()

__version__ = "0.2.0"

# The Python API (tfpg.api), imported on first use: `import tfpg` stays light (no TensorFlow) until then.
_API = ("A2C", "DQN", "NPG", "PPO", "REINFORCE", "TRPO", "Agent", "Callback", "CheckpointEvery", "EvaluateEvery",
        "EvaluationInfo", "ExportBest", "IterationInfo", "StopAtReward", "load", "make_agent", "train")
__all__ = ["SHOW_TF_LOGS", "__version__", "evaluate", *_API]


def __getattr__(name: str):
    if name in _API:
        from tfpg.core.quiet import import_tensorflow

        import_tensorflow()
        import tfpg.api

        return getattr(tfpg.api, name)
    if name == "evaluate":   # python -m tfpg.evaluate's function: greedy returns of an exported SavedModel
        from tfpg.cli.evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'tfpg' has no attribute {name!r}")
