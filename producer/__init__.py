"""The producer: scans folders and enqueues batches of image paths as Celery tasks."""
