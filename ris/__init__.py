"""Core library of the reverse image search pipeline: no Celery, no click, no CLI."""
