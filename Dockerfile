# The sweepscope image: one image for the Ray head, the Ray workers and the dashboard
# (see docker-compose.yml and docs/cluster.md).
#   docker build -t sweepscope:local .
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 ...  (GPU nodes)
FROM python:3.11-slim

# torch is pinned (a plain `torch` pulls a multi-GB CUDA build); the CPU build by default.
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAY_USAGE_STATS_ENABLED=0

RUN useradd --create-home --uid 1000 sweepscope \
    && mkdir -p /shared \
    && chown sweepscope:sweepscope /shared

WORKDIR /app
COPY pyproject.toml README.md ./
COPY scripts/install.sh scripts/docker-entrypoint.sh scripts/
COPY runner runner
COPY dashboard dashboard
COPY experiments experiments
# The same script installs a developer's virtualenv in tests/test_install.py.
RUN TORCH_SPEC="$TORCH_SPEC" TORCH_INDEX_URL="$TORCH_INDEX_URL" PYTHON=python3 scripts/install.sh

USER sweepscope
ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]
CMD ["sweepscope", "--help"]
