"""Server processes the tests start (`python -m opensesame_predictor ...`), and a clock for
the rate limiter's storage."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FakeClock:
    """Stands in for time.time() in the limiter and in `limits`' memory storage."""

    now: float = field(default_factory=time.time)

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RunningServer:
    """A server process on 127.0.0.1, its base URL and the file its stderr goes to."""

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
