"""Tooling. Local Redis, Milvus, query service and worker processes for demos, tests, benches."""
