"""Tooling. One-time conversion of the shipped PyTorch weights to ONNX (the `convert` extra)."""
