"""Triton model repositories, the local tritonserver, and the tritonclient-based client."""
