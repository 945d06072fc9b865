"""Collectors (episodes, n-step windows, fixed horizons, transitions) and replay buffers."""
