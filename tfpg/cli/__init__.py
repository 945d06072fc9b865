"""The command lines: train, evaluate, docs."""
