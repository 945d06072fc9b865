"""The training loop (gym and graph trainers on one base), checks, checkpoints, evaluation, logging,
signals."""
