"""Parity: every runtime and the served model against PyTorch on fixed inputs, its reports and reproductions."""
