"""The query side: search the index by image."""
