"""backends/graph"""
