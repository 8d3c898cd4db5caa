"""Runtime. Embedding: model recipes, decoding, the inference session, the batch pipeline."""
