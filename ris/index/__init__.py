"""Runtime. The vector index: the interface the rest of the product uses, and Milvus."""
