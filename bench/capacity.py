"""Capacity plan for 1M-1B images from measured figures and stated formulas (docs/SCALING.md)."""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.index.milvus import HNSW_PARAMS
from ris.settings import Settings

GIB = 2**30
DAY = 86_400
SCALES = (1_000_000, 10_000_000, 100_000_000, 1_000_000_000)
BEGIN, END = "<!-- capacity:begin -->", "<!-- capacity:end -->"


@dataclass(frozen=True)
class Measured:
    """Figures measured on the 2-core machine; names are the keys of `make bench` BENCH_JSON,
    `million_*` those of one `make bench-scale` run (its `scale_*` object)."""

    cores: int = 2
    # bench.ingest (README "Performance"): one 2-core host, the default model.
    e2e_ips: float = 95.0  # enqueue -> searchable
    compute_ips: float = 102.0  # decode + embed, no queue
    model_only_ips: float = 120.0  # the model alone, best allowed runtime and layout
    # bench.scale, 2026-12-02 (docs/SCALING.md): 1,002,000 rows of the compact model in an
    # IVF_SQ8 collection of one Milvus 2.3.5 standalone, written by the product's upsert.
    million_rows: int = 1_002_000
    million_dim: int = 384
    million_bytes_per_image: float = 999.0  # Milvus RSS growth / rows (codes, ids, scalars)
    million_disk_bytes_per_image: float = 4581.0  # row logs, delete logs, index files
    million_ready_s: float = 606.1  # first write -> every row flushed, indexed and loaded
    million_milvus_cpu_ms_per_row: float = 1.044  # Milvus CPU until ready, over the rows
    # bench.scaling, 2026-11-27 (docs/SCALING.md): 12,800 rows of 1280-d under HNSW.
    milvus_cpu_ms_per_task: float = 15.0  # Milvus CPU per upserted batch of 64, at the ceiling
    redis_cpu_ms_per_task: float = 0.40
    worker_cpu_ms_per_task: float = 11.3  # queue, bookkeeping and upsert, without the model
    index_milvus_cpu_ms_per_row: float = 4.64  # HNSW builds after flushes, compactions included
    index_measured_dim: int = 1280  # the vectors' dimension in that run
    redis_queue_bytes_per_message: float = 7026.0  # MEMORY USAGE of the queue / its length
    redis_message_paths: int = 64
    redis_message_path_chars: int = 3456
    redis_job_hash_bytes: float = 251.0
    redis_job_batch_set_bytes_per_batch: float = 69.3

    @classmethod
    def from_bench_json(cls, path: Path) -> Measured:
        """Defaults overridden by whatever a BENCH_JSON file of `make bench` or `make
        bench-scale` holds."""
        data = json.loads(path.read_text())
        per_task = data.get("ceiling_cpu_ms_per_task", {})
        names = {"milvus": "milvus", "redis": "redis", "workers": "worker"}
        data |= {f"{names[part]}_cpu_ms_per_task": ms for part, ms in per_task.items()}
        for run in [value for key, value in data.items() if key.startswith("scale_")]:
            data |= {f"million_{key}": value for key, value in run.items()}
            if "milvus_cpu_ms_per_row_ready" in run.get("loading", {}):
                data["million_milvus_cpu_ms_per_row"] = run["loading"][
                    "milvus_cpu_ms_per_row_ready"
                ]
        known = {field.name for field in fields(cls)}
        return replace(cls(), **{key: value for key, value in data.items() if key in known})

    @property
    def million_ready_rows_per_s(self) -> float:
        """Rows per second that one standalone here turned into searchable rows."""
        return self.million_rows / self.million_ready_s

    @property
    def cpu_ips_per_core(self) -> float:
        """End-to-end images/s per core with the default model."""
        return self.e2e_ips / self.cores

    @property
    def decode_ips_per_core(self) -> float:
        """Decode alone, per core: the compute time per image minus the model's share of it."""
        return 1 / (self.cores / self.compute_ips - self.cores / self.model_only_ips)


@dataclass(frozen=True)
class Assumptions:
    """What is not measured here; each is a stated input, change it to re-plan."""

    dim: int = get_model_spec(DEFAULT_MODEL).dim
    hnsw_m: int = int(HNSW_PARAMS["M"])
    ivf_pq_m: int = 64  # subquantizers of 8 bits: 2560 / 64 = 40 dimensions each
    diskann_pq_ratio: float = 0.125  # Milvus default pq_code_budget_gb_ratio
    diskann_cache_ratio: float = 0.10  # Milvus default search_cache_budget_gb_ratio
    diskann_max_degree: int = 56  # Milvus default
    path_bytes: int = 100  # average absolute path in production
    node_gib: int = 64  # one Milvus query node
    standalone_max_gib: int = 128  # the largest single host we would run standalone on
    usable: float = 0.7  # share of a node's memory for loaded segments (growing data, OS)
    gpu_ips: float = 1100.0  # per GPU, the default model (two small CNNs); NOT measured here
    batch_size: int = Settings.model_fields["batch_size"].default
    max_queue_length: int = Settings.model_fields["max_queue_length"].default


def bytes_per_vector(a: Assumptions) -> dict[str, float]:
    raw = a.dim * 4
    return {
        "raw": raw,
        # Level 0 holds 2M neighbour ids of 4 bytes, a link count (4) and the row's label (8).
        "hnsw": raw + a.hnsw_m * 2 * 4 + 12,
        "ivf_pq": a.ivf_pq_m + 8,  # one byte per subquantizer and the id
        "diskann_ram": raw * (a.diskann_pq_ratio + a.diskann_cache_ratio),
        "diskann_disk": raw + a.diskann_max_degree * 4 + 4,
        "scalars": 8 + 8 + 8 + a.path_bytes + 4,  # id, size, mtime_ns, path + its offset
    }


def milvus_for(memory_bytes: float, a: Assumptions) -> str:
    need_gib = memory_bytes / GIB / a.usable
    if need_gib <= a.standalone_max_gib:
        host = 2 ** max(3, math.ceil(math.log2(need_gib)))
        return f"standalone, {host} GiB host"
    return f"cluster, {math.ceil(need_gib / a.node_gib)} query nodes x {a.node_gib} GiB"


def _size(value: float) -> str:
    if value >= 1024 * GIB:
        return f"{value / 1024 / GIB:.1f} TiB"
    return f"{value / GIB:.1f} GiB" if value >= GIB / 10 else f"{value / 2**20:.0f} MiB"


def memory_table(m: Measured, a: Assumptions) -> list[list[str]]:
    """Per scale: the compact IVF_SQ8 collection as measured at a million rows, beside the
    default model's 2560-d vectors under HNSW and DiskANN by formula."""
    per = bytes_per_vector(a)
    rows = []
    for images in SCALES:
        compact = images * m.million_bytes_per_image
        hnsw = images * (per["hnsw"] + per["scalars"])
        diskann = images * (per["diskann_ram"] + per["scalars"])
        rows.append(
            [
                f"{images:,}",
                _size(compact),
                _size(images * m.million_disk_bytes_per_image),
                milvus_for(compact, a),
                _size(hnsw),
                milvus_for(hnsw, a),
                f"{_size(diskann)} / {_size(images * per['diskann_disk'])}",
                milvus_for(diskann, a),
            ]
        )
    return rows


def index_ms_per_row(m: Measured, a: Assumptions) -> float:
    """HNSW build CPU per row, assumed linear in the dimension (distance computations)."""
    return m.index_milvus_cpu_ms_per_row * a.dim / m.index_measured_dim


def default_hnsw_ms_per_row(m: Measured, a: Assumptions) -> float:
    """Milvus CPU per row for the default model under HNSW: the 12,800-row insert path plus
    the HNSW build extrapolated to the default's dimension."""
    return m.milvus_cpu_ms_per_task / a.batch_size + index_ms_per_row(m, a)


def ingestion_table(m: Measured, a: Assumptions, days: float) -> list[list[str]]:
    rows = []
    for images in SCALES:
        rate = images / (days * DAY)
        tasks = rate / a.batch_size
        rows.append(
            [
                f"{images:,}",
                f"{rate:,.0f}",
                f"{math.ceil(rate / m.cpu_ips_per_core):,}",
                f"{math.ceil(rate / a.gpu_ips):,}",
                f"{rate * m.million_milvus_cpu_ms_per_row / 1000:.1f}",
                f"{rate / m.million_ready_rows_per_s:.2f}",
                f"{rate * default_hnsw_ms_per_row(m, a) / 1000:.1f}",
                f"{tasks * m.redis_cpu_ms_per_task / 1000:.3f}",
            ]
        )
    return rows


def redis_bytes_per_message(m: Measured, a: Assumptions) -> float:
    """The measured message, rescaled to the planned path length and batch size; the body is
    base64 (4/3 bytes per byte), a path costs its bytes plus 4 of JSON quoting."""
    measured_path = m.redis_message_path_chars / m.redis_message_paths
    fixed = m.redis_queue_bytes_per_message - m.redis_message_paths * (measured_path + 4) * 4 / 3
    return fixed + a.batch_size * (a.path_bytes + 4) * 4 / 3


def redis_table(m: Measured, a: Assumptions) -> list[list[str]]:
    queue = a.max_queue_length * redis_bytes_per_message(m, a)
    rows = []
    for images in SCALES:
        batches = math.ceil(images / a.batch_size)
        record = m.redis_job_hash_bytes + batches * m.redis_job_batch_set_bytes_per_batch
        rows.append(
            [f"{images:,}", f"{batches:,}", _size(queue), _size(record), _size(queue + record)]
        )
    return rows


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render(m: Measured, a: Assumptions) -> str:
    """The tables of docs/SCALING.md, in markdown."""
    per = bytes_per_vector(a)
    compact = f"compact {m.million_dim}-d, IVF_SQ8"
    default = f"default {a.dim}-d"
    memory = _markdown(
        [
            "images",
            f"{compact}: Milvus memory ({m.million_bytes_per_image:,.0f} B, measured)",
            f"its storage ({m.million_disk_bytes_per_image:,.0f} B, measured)",
            f"Milvus for {compact}",
            f"{default}, HNSW M={a.hnsw_m}: memory ({per['hnsw'] + per['scalars']:,.0f} B, "
            "formula)",
            "Milvus for it",
            f"{default}, DiskANN: RAM / disk ({per['diskann_ram'] + per['scalars']:,.0f} / "
            f"{per['diskann_disk']:,.0f} B, formula)",
            "Milvus for it",
        ],
        memory_table(m, a),
    )
    header = [
        "images",
        "images/s needed",
        f"CPU worker cores ({m.cpu_ips_per_core:.0f}/s each)",
        f"GPUs ({a.gpu_ips:,.0f}/s each, assumed)",
        f"Milvus cores, {compact} ({m.million_milvus_cpu_ms_per_row:.2f} ms per row, measured)",
        f"x one standalone here ({m.million_ready_rows_per_s:,.0f} rows/s to ready)",
        f"Milvus cores, {default} HNSW ({default_hnsw_ms_per_row(m, a):.1f} ms per row, "
        "extrapolated)",
        "Redis cores",
    ]
    day, week = (_markdown(header, ingestion_table(m, a, days)) for days in (1, 7))
    redis = _markdown(
        [
            "images",
            f"batches of {a.batch_size}",
            f"queue at its bound ({a.max_queue_length:,} batches)",
            "one job's record",
            "total",
        ],
        redis_table(m, a),
    )
    return (
        f"{BEGIN}\n**Milvus memory and storage** (bytes per image in the headers):\n\n{memory}\n\n"
        f"**Ingestion in 1 day:**\n\n{day}\n\n**Ingestion in 1 week:**\n\n{week}\n\n"
        f"Each GPU needs {math.ceil(a.gpu_ips / m.decode_ips_per_core)} cores decoding beside it "
        f"({m.decode_ips_per_core:.0f} images/s per core = 1 / ({m.cores}/{m.compute_ips:.0f} - "
        f"{m.cores}/{m.model_only_ips:.0f})).\n\n"
        f"**Redis memory** ({redis_bytes_per_message(m, a):,.0f} bytes per queued batch of "
        f"{a.batch_size} paths of {a.path_bytes} bytes):\n\n{redis}\n{END}"
    )


def write(document: Path, tables: str) -> None:
    """Replace what lies between the capacity markers of `document` with `tables`."""
    text = document.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"Error: {document} has no {BEGIN} ... {END} markers")
    document.write_text(pattern.sub(lambda _: tables, text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--figures", type=Path, help="a BENCH_JSON file to take figures from")
    parser.add_argument("--write", type=Path, help="update the tables in this markdown file")
    arguments = parser.parse_args()
    measured = Measured.from_bench_json(arguments.figures) if arguments.figures else Measured()
    tables = render(measured, Assumptions())
    if arguments.write:
        write(arguments.write, tables)
    else:
        print(tables)


def plan(**overrides: Any) -> str:
    """The tables with some assumptions changed, e.g. plan(path_bytes=60, gpu_ips=1500)."""
    return render(Measured(), replace(Assumptions(), **overrides))


if __name__ == "__main__":
    main()
