"""Benchmarks run by `make bench`: they print figures measured side by side in one run."""
