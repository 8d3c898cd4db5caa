"""`celery -A bench.standin_worker worker`: the product's worker with its embedding replaced by
a fixed hold of BENCH_HOLD_SECONDS per batch (no CPU, like a GPU busy elsewhere) and made-up
vectors, so that the queue, Redis and Milvus are what the scaling benchmark measures."""

from __future__ import annotations

import logging
import os

from bench.standin import HoldPipeline
from ris.embedding.models import get_model_spec
from ris.settings import Settings
from workers import app, runtime

log = logging.getLogger(__name__)
HOLD_VARIABLE = "BENCH_HOLD_SECONDS"


def hold_pipeline(settings: Settings) -> HoldPipeline:
    """Built in each worker process in place of the model; says so loudly in the log."""
    seconds = float(os.environ.get(HOLD_VARIABLE, "0"))
    log.warning(
        "BENCHMARK MODE (%s=%g): images are neither decoded nor embedded; each batch sleeps "
        "instead and stores made-up vectors. Never use it for a real collection.",
        HOLD_VARIABLE,
        seconds,
    )
    return HoldPipeline(seconds, get_model_spec(settings.model).dim)


runtime.use_pipeline(hold_pipeline)

__all__ = ["app"]
