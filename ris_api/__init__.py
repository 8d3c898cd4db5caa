"""The product from Python: search an index by image, enqueue folders, follow jobs, find
duplicate groups.

    from ris_api import Client

    with Client() as client:            # settings from RIS_* variables, or pass URIs
        for hit in client.search("photo.jpg", top_k=5, under=["/data/2024"]):
            print(hit.rank, hit.score, hit.path)

Searching needs neither Celery nor click; enqueueing loads the producer's Celery client, and
looking for duplicates the duplicate rules (faiss).
"""

from ris.errors import ImageDecodeError, RisError
from ris.jobs.tracker import JobStatus
from ris.search.image_search import SearchResult
from ris_api.client import Client, QueryImage

__all__ = ["Client", "ImageDecodeError", "JobStatus", "QueryImage", "RisError", "SearchResult"]
