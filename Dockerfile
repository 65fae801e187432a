# syntax=docker/dockerfile:1
# The bot as a container: `docker build -t sms-numbers-bot .`, or `docker compose up`.
# Written and linted (hadolint) without a Docker engine: see README, "Container".

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a venv with the locked dependencies, then the project without dependencies ----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
# A layer that changes only with the lock: every package pinned and hash-checked, wheels only
# (no compiler in a slim image).
COPY requirements.lock ./
RUN pip install --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY storage ./storage
RUN pip install --no-deps .

# --- runtime: the venv, a non-root user, nothing else -------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# WEBHOOK_PORT set: the HTTP server (/healthz for HEALTHCHECK, /metrics) runs while polling too.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WEBHOOK_PORT=8080
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid bot --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin bot
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# DATABASE_PATH defaults to data/bot.sqlite3, relative to this directory: the only place written.
RUN mkdir data && chown bot:bot data
USER 10001:10001
VOLUME ["/app/data"]
# WEBHOOK_PORT's default: Telegram webhooks, provider pushes, /healthz, /readyz, /metrics.
# The check ignores any HTTP(S)_PROXY in the environment: it asks this container itself.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:' + os.environ.get('WEBHOOK_PORT', '8080') + '/healthz', timeout=4)"]
# The README's `python -m bot`; settings come from the environment (compose: env_file .env).
CMD ["python", "-m", "bot"]
