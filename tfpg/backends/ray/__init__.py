"""Rollout workers on Ray actors, each building the algorithm it is named."""
