# syntax=docker/dockerfile:1
# nbo-stream worker image. Build:  docker build -t nbo-stream:0.1.0 .
# Run:    docker run --rm -e NBO_KAFKA_BOOTSTRAP=... -e NBO_REDIS_URL=... -p 6066:6066 nbo-stream:0.1.0
# The same image runs any `nbo` sub-command (e.g. `embed --publish` in the CronJob).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the locked runtime dependencies and the project, in a venv at /opt/venv --------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install uv==0.13.9
WORKDIR /src
# Dependencies first (cached until pyproject.toml or uv.lock change); dev group excluded.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-editable --no-install-project
# Then the project itself, installed as a regular (non-editable) wheel.
COPY README.md ./
COPY app ./app
COPY agents ./agents
RUN uv sync --frozen --no-dev --no-editable

# --- runtime: slim Python, the venv, a numeric non-root user ------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 nbo \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/nbo \
        --shell /usr/sbin/nologin nbo \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/nbo
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/nbo \
    MPLCONFIGDIR=/tmp/matplotlib \
    NBO_WEB_HOST=0.0.0.0 \
    NBO_WEB_PORT=6066 \
    OPENBLAS_NUM_THREADS=1
# faust keeps `<app id>-data` in the working directory: in Kubernetes an emptyDir is mounted
# here, so the root filesystem can stay read-only.
WORKDIR /var/lib/nbo
USER 10001:10001
EXPOSE 6066
# Exec form: `nbo` is PID 1 and receives SIGTERM itself (faust then stops cleanly).
ENTRYPOINT ["nbo"]
CMD ["worker"]
