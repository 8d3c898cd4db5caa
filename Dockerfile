# syntax=docker/dockerfile:1
# Images for the workers, the query service and the producer CLI:
#   docker build --target cpu    -t reverse-image-search:cpu .     # workers, query, producer
#   docker build --target gpu    -t reverse-image-search:gpu .     # workers on NVIDIA GPUs
#   docker build --target flower -t reverse-image-search:flower .  # cpu + Flower monitoring
# The builder converts the model to ONNX once (the only stage with PyTorch); the runtime images
# carry the converted file under RIS_CACHE_DIR, so workers never convert and never import torch.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# onnxruntime-gpu 1.31 is built for CUDA 13 and cuDNN 9: change the two together.
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04
ARG ONNXRUNTIME_GPU=1.31.1

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 RIS_CACHE_DIR=/opt/ris/cache
WORKDIR /src
COPY pyproject.toml README.md ./
# torch as pinned by the convert extra, from PyTorch's CPU index: the same version from PyPI
# would pull several GB of CUDA libraries that a one-time conversion does not need.
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; extra = tomllib.load(open('pyproject.toml', 'rb'))\
['project']['optional-dependencies']['convert']; print(*[r for r in extra if r.startswith('torch')])" \
        > /tmp/torch.txt \
    && pip install --index-url https://download.pytorch.org/whl/cpu --requirement /tmp/torch.txt
COPY ris ris
COPY producer producer
COPY workers workers
COPY query query
COPY ris_cli ris_cli
COPY ris_api ris_api
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ".[convert]" \
    && pip wheel --no-deps --wheel-dir /wheels . \
    && python -m ris_cli.convert

FROM ${PYTHON_IMAGE} AS cpu
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH RIS_CACHE_DIR=/opt/ris/cache
RUN python -m venv "$VIRTUAL_ENV" && useradd --system --uid 10001 --user-group --create-home ris
# The project with its object-storage reader (the sources extra); no torch and no weights (the
# converted file is named by a hash of its recipe, so nothing else is needed to find it).
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=cache,target=/root/.cache/pip \
    pip install "$(echo /wheels/*.whl)[sources]"
COPY --from=builder --chown=ris:ris /opt/ris/cache/models /opt/ris/cache/models
USER ris
WORKDIR /home/ris
# The query service's volume of kept local features (RIS_FEATURE_CACHE_DIR) is mounted here:
# made by ris, so a new volume is too.
RUN python -m ris_cli.convert --check && mkdir /home/ris/features
CMD ["celery", "-A", "workers", "worker", "--loglevel", "INFO"]

FROM cpu AS flower
USER root
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=cache,target=/root/.cache/pip \
    pip install "$(echo /wheels/*.whl)[monitoring]"
USER ris
CMD ["celery", "-A", "workers", "flower"]

FROM ${CUDA_IMAGE} AS gpu
ARG ONNXRUNTIME_GPU
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH RIS_CACHE_DIR=/opt/ris/cache \
    RIS_DEVICE=cuda
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv "$VIRTUAL_ENV" \
    && useradd --system --uid 10001 --user-group --create-home ris
# onnxruntime (a base dependency) and onnxruntime-gpu ship the same `onnxruntime` package and
# overwrite each other's files: keep only the GPU build, then prove it has the CUDA provider.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=cache,target=/root/.cache/pip \
    pip install "$(echo /wheels/*.whl)[gpu]" "onnxruntime-gpu==${ONNXRUNTIME_GPU}" \
    && pip uninstall -y onnxruntime \
    && pip install --force-reinstall --no-deps "onnxruntime-gpu==${ONNXRUNTIME_GPU}" \
    && python -c "import onnxruntime as o; assert 'CUDAExecutionProvider' in o.get_available_providers()"
COPY --from=builder --chown=ris:ris /opt/ris/cache/models /opt/ris/cache/models
USER ris
WORKDIR /home/ris
# The query service's volume of kept local features (RIS_FEATURE_CACHE_DIR) is mounted here:
# made by ris, so a new volume is too.
RUN python -m ris_cli.convert --check && mkdir /home/ris/features
CMD ["celery", "-A", "workers", "worker", "--loglevel", "INFO"]
