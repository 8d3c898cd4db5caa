"""`celery -A bench.baseline_decode_worker worker`: the product's worker with today's decoder
(JPEG draft mode only, every other format decoded whole), the baseline of `real_e2e_ips`."""

from __future__ import annotations

from bench.decoding import use_todays_decoder
from workers import app

use_todays_decoder()

__all__ = ["app"]
