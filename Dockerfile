# syntax=docker/dockerfile:1
#
# attnviz: the web service + the shipped checkpoints, in one image that needs no network
# at run time.
#
#   docker build -t attnviz .                                   # CPU torch (default)
#   docker build -t attnviz:gpu --build-arg TORCH_FLAVOR=cu128 .  # CUDA torch (GPU variant)
#   docker run -p 8000:8000 attnviz                            # http://localhost:8000
#
# Build arguments
#   BASE_IMAGE       a Debian-based image with python3.11 + venv + pip (python:3.11-slim;
#                    deploy/make-base-image.sh makes an equivalent one with debootstrap)
#   TORCH_VERSION    torch release; the wheel installed is torch==$TORCH_VERSION+$TORCH_FLAVOR
#   TORCH_FLAVOR     cpu (default: ~200 MB) | cu126 | cu128 ... (GPU variant: CUDA wheels;
#                    run with --gpus all; ATTNVIZ_DEVICE=auto then picks the GPU)
#   TORCH_INDEX_URL  where torch comes from; default PyTorch's index for $TORCH_FLAVOR.
#                    (A plain `pip install torch` from PyPI would pull the multi-GB CUDA build.)
#   TORCH_WHEEL_DIR  take torch from a local wheel directory instead: a path in the build
#                    context (e.g. .whl) or an absolute path mounted into the build
#                    (podman build --volume /opt/wheels:/opt/wheels:ro ...)
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_CERT   optional, for a mirror / TLS-inspecting
#                    proxy at build time (see deploy/image-test.sh); not kept in the image.
#
# A real LLM (e.g. SmolLM2 from `make import-smollm2`, or any `attnviz import x.gguf`) is not
# baked in: import it on the host, then mount the folder and list it beside the shipped ones:
#   docker run -p 8000:8000 -v "$PWD/imported:/srv/attnviz/imported:ro" \
#     -e ATTNVIZ_CHECKPOINT_DIR=/srv/attnviz/checkpoints:/srv/attnviz/imported attnviz

ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    LANG=C.UTF-8

# ---------------------------------------------------------------------------------------
FROM base AS builder
ARG TORCH_VERSION=2.13.0
ARG TORCH_FLAVOR=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_FLAVOR}
ARG TORCH_WHEEL_DIR=""
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT
ARG PIP_DEFAULT_TIMEOUT=120
ARG SETUPTOOLS_VERSION=80.9.0

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# 1. torch, pinned to the CPU (or chosen CUDA) build, so pip never resolves the default
#    CUDA wheel.  Its own small dependencies come from the index (or PyPI / PIP_INDEX_URL).
RUN --mount=type=bind,target=/ctx \
    set -eux; \
    if [ -n "${TORCH_WHEEL_DIR}" ]; then \
      case "${TORCH_WHEEL_DIR}" in /*) dir="${TORCH_WHEEL_DIR}" ;; *) dir="/ctx/${TORCH_WHEEL_DIR}" ;; esac; \
      pip install --find-links "$dir" "torch==${TORCH_VERSION}+${TORCH_FLAVOR}"; \
    else \
      pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}+${TORCH_FLAVOR}"; \
    fi; \
    # C++ headers, C++ test binaries and protoc are for building extensions, not for
    # running models (~190 MB).
    t="$(python -c 'import importlib.util as u; print(u.find_spec("torch").submodule_search_locations[0])')"; \
    rm -rf "$t/include" "$t/test" "$t"/bin/*Test "$t"/bin/test_* "$t"/bin/protoc*; \
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

# 2. The project's other dependencies (cached while pyproject.toml is unchanged) ...
COPY pyproject.toml README.md /src/
WORKDIR /src
RUN mkdir -p app models training \
 && pip install "setuptools==${SETUPTOOLS_VERSION}" \
 && pip install --no-build-isolation .

# 3. ... then the project itself (gives the `attnviz` CLI).
COPY app/ /src/app/
COPY models/ /src/models/
COPY training/ /src/training/
COPY attnviz/ /src/attnviz/
RUN pip install --no-deps --no-build-isolation . \
 && rm -rf /src/build /src/*.egg-info

# ---------------------------------------------------------------------------------------
FROM base AS runtime
LABEL org.opencontainers.image.title="attnviz" \
      org.opencontainers.image.description="Look inside small trained transformers, head by head and step by step." \
      org.opencontainers.image.licenses="MIT"

# An unprivileged user; the code and weights stay root-owned and read-only to it.
RUN groupadd --system --gid 10001 attnviz \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin attnviz

COPY --from=builder /opt/venv /opt/venv
WORKDIR /srv/attnviz
COPY app/ app/
COPY models/ models/
COPY training/ training/
COPY attnviz/ attnviz/
COPY static/ static/
COPY templates/ templates/
COPY checkpoints/ checkpoints/
COPY pyproject.toml README.md ./
COPY deploy/entrypoint.sh /usr/local/bin/attnviz-entrypoint
# Readable by the unprivileged user whatever the modes in the build context (safetensors
# writes 0600 files); byte-compiled now, as the running container may be read-only.
RUN chmod -R a+rX,go-w /srv/attnviz /usr/local/bin/attnviz-entrypoint \
 && chmod a+x /usr/local/bin/attnviz-entrypoint \
 && python -m compileall -q app models training attnviz

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/srv/attnviz \
    HOME=/tmp \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=1 \
    FORWARDED_ALLOW_IPS=* \
    ATTNVIZ_DEVICE=auto \
    ATTNVIZ_CHECKPOINT_DIR=/srv/attnviz/checkpoints \
    HF_HUB_OFFLINE=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["attnviz-entrypoint", "healthcheck"]
ENTRYPOINT ["attnviz-entrypoint"]
