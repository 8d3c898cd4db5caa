"""Tooling. Retrieval quality: metrics, labelled evaluation sets, whole-pipeline evaluation."""
