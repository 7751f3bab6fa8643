"""Measured quality and correctness: sample metrics, parity, benchmarks."""
