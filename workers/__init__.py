"""Celery workers: `celery -A workers worker` embeds batches of images into Milvus."""

from workers.app import app

__all__ = ["app"]
