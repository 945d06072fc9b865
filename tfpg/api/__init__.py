"""The Python API: one agent class per algorithm, `train`, `load`, and the callbacks (`tfpg.PPO(...)` etc. are
these, reached lazily from `import tfpg`). The command line (`tfpg.cli.train`) is a thin layer over it."""
from __future__ import annotations

from tfpg.api.agent import (
    A2C,
    AGENT_CLASSES,
    DQN,
    NPG,
    PPO,
    REINFORCE,
    TRPO,
    Agent,
    configure,
    load,
    make_agent,
    train,
)
from tfpg.training.callbacks import (
    Callback,
    CheckpointEvery,
    EvaluateEvery,
    EvaluationInfo,
    ExportBest,
    IterationInfo,
    StopAtReward,
)


__all__ = ["A2C", "AGENT_CLASSES", "DQN", "NPG", "PPO", "REINFORCE", "TRPO", "Agent", "Callback", "CheckpointEvery",
           "EvaluateEvery", "EvaluationInfo", "ExportBest", "IterationInfo", "StopAtReward", "configure", "load",
           "make_agent", "train"]
