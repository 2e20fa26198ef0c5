# syntax=docker/dockerfile:1
# The HTTP service in a container: POST /predict, /health, /metrics and /docs on port 8000.
#
#   docker build -t opensesame-predictor .
#   docker run -p 8000:8000 opensesame-predictor                        # the embedded example specs
#   docker run -p 8000:8000 -v "$PWD/specs:/specs:ro" opensesame-predictor   # your own specs
#
# Two stages: `build` turns the project and its dependencies into wheels; the runtime stage
# installs those wheels (no compiler, no build tools, no network) and runs without privileges.
# Settings are the usual OPENSESAME_* variables (README, "Settings").

ARG PYTHON_VERSION=3.11.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY server/ server/
# the redis extra: replicas share their rate limits through Redis (compose's production profile)
RUN pip wheel --wheel-dir /wheels '.[redis]'

FROM python:${PYTHON_VERSION}-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheels are mounted for the install only, so none of them stays in a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/*.whl

RUN groupadd --system --gid 10001 opensesame \
    && useradd --system --uid 10001 --gid opensesame --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin opensesame \
    && mkdir -p /data /specs \
    && chown opensesame:opensesame /data

# Specs: the folder /specs is the workspace; the image carries three small example specs so a
# plain `docker run` serves something. Mount your own folder over /specs (read-only is enough).
COPY fixtures/petstore-3.0.yaml fixtures/tasks-3.1.json fixtures/library-swagger-2.0.json /specs/

# Store: parsed specs and the built index live in /data, a volume, so restarts skip parsing.
# Listen on every interface of the container; publish the port with `-p`.
ENV OPENSESAME_WORKSPACE=/specs \
    OPENSESAME_DATABASE_URL=/data/store.json \
    OPENSESAME_API_HOST=0.0.0.0 \
    OPENSESAME_API_PORT=8000 \
    OPENSESAME_LOG_LEVEL=INFO
VOLUME ["/data"]
EXPOSE 8000

# numeric, so orchestrators can tell it is not root without reading /etc/passwd
USER 10001:10001
WORKDIR /data

# /health answers 200 once the specs are loaded (503 while loading or when none loaded).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('OPENSESAME_API_PORT', '8000') + '/health', timeout=4)"]

ENTRYPOINT ["opensesame-predictor"]
CMD ["http"]
