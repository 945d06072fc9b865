"""The graph backend's pieces: K stacked agents, the in-graph collector."""
