"""Helpers of the HTTP tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opensesame_predictor.config import Settings
from opensesame_predictor.service import Service


def make_runtime(*specs: Path, load: bool = True, **overrides: Any) -> Service:
    """A runtime over `specs` (the store comes from OPENSESAME_DATABASE_URL), loaded at once."""
    settings = Settings(specs=[str(s) for s in specs], **overrides)
    runtime = Service(settings)
    runtime.set_sources(settings.specs)
    if load:
        runtime.load()
    return runtime


@dataclass
class FakeClock:
    """Stands in for time.time() in the limiter and in `limits`' memory storage."""

    now: float = field(default_factory=time.time)

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str
    stderr_path: Path

    def stop(self) -> str:
        """Stop the server by pid and return what it logged."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.stderr_path.read_text(errors="replace")
