"""Development datasets for retrieval quality, fetched from package registries and cached."""
