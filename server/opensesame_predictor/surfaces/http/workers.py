"""Several worker processes behind one socket (uvicorn's process manager).

The parent parses the specs once, so every worker starts from the warm store and index cache
instead of parsing them N times; it hands its settings to the workers as OPENSESAME_*
variables, binds the socket and supervises (a worker that dies is replaced). Metrics go
through prometheus-client's multiprocess mode, so /metrics counts every worker whichever one
answers. Rate limits must be shared between the workers (Redis): per-process counters would
promise N times the quota, so that is refused.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile

from fastapi import FastAPI

from opensesame_predictor.config import Settings
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.http.limits import HeaderDeadlineProtocol, server_options
from opensesame_predictor.surfaces.http.metrics import MULTIPROCESS_DIR


def run_workers(settings: Settings, app: FastAPI, host: str, port: int, factory: str) -> int:
    """Serve `factory` (an import string of a function that builds the app from the
    environment) in `settings.http_workers` processes until interrupted."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    guard = app.state.guard
    if guard is not None and not guard.shared:
        print(
            f"error: {settings.http_workers} workers would each count rate limits on their "
            "own (each user would get that many times the quota): share them through Redis "
            "(OPENSESAME_RATE_LIMIT_STORAGE_URI=redis://...) or turn them off "
            "(OPENSESAME_RATE_LIMIT_ENABLED=false)",
            file=sys.stderr,
        )
        return 2
    os.environ.update(settings.environment())
    # parsed once, in a child that then exits (the parent keeps none of it in memory): the
    # workers load from the store and the index cache it filled
    warming = multiprocessing.get_context("spawn").Process(target=_warm, name="warm-up")
    warming.start()
    warming.join()
    own_dir = not os.environ.get(MULTIPROCESS_DIR)
    if own_dir:
        os.environ[MULTIPROCESS_DIR] = tempfile.mkdtemp(prefix="opensesame-metrics-")
    config = uvicorn.Config(
        factory,
        factory=True,
        workers=settings.http_workers,
        host=host,
        port=port,
        **server_options(settings),  # the deadline class goes by name; configure_worker sets it
    )
    try:
        sock = config.bind_socket()
    except OSError as exc:  # uvicorn logs it and exits; say it in one line
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(
        f"serving http://{host}:{port} with {settings.http_workers} workers "
        "(docs at /docs, health at /health)",
        file=sys.stderr,
    )
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
        if own_dir:
            shutil.rmtree(os.environ.pop(MULTIPROCESS_DIR), ignore_errors=True)
    return 0


def _warm() -> None:
    """In a child: load the catalog the environment's settings name, through the store."""
    settings = Settings()
    warm = Service(settings)
    warm.set_sources(settings.specs, settings.workspace or None)
    warm.load()


def configure_worker(seconds: float) -> None:
    """In a worker, before it serves: the header deadline of its connections."""
    HeaderDeadlineProtocol.seconds = seconds
