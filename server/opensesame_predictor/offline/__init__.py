"""Offline tools: evaluation, synthetic training data, training and benchmarks."""
