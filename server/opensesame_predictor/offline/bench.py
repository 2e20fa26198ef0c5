"""`opensesame-predictor bench`: what loading and predicting cost, measured on this machine."""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.errors import CatalogEmpty, SpecError
from opensesame_predictor.core.features import words
from opensesame_predictor.core.models import HistoryEvent, PredictRequest
from opensesame_predictor.core.store import SpecStore
from opensesame_predictor.service import Service


def bench_prompts(catalog: Catalog, count: int = 200, seed: int = 7) -> list[PredictRequest]:
    """A fixed set of requests derived from the catalog: operation summaries with words dropped
    and shuffled, half of them with a history of one or two earlier calls."""
    rng = random.Random(seed)
    operations = catalog.operations
    requests: list[PredictRequest] = []
    for _ in range(count):
        op = rng.choice(operations)
        text = words(op.summary or op.operation_id or op.path)
        kept = [w for w in text if rng.random() > 0.3] or text
        rng.shuffle(kept)
        history = [
            HistoryEvent(api_call=rng.choice(operations).key)
            for _ in range(rng.choice((0, 0, 1, 2)))
        ]
        requests.append(PredictRequest(prompt=" ".join(kept), history=history))
    return requests


def _rss_mb() -> float:
    """This process's peak resident size. On Linux the memory map's own high-water mark:
    `ru_maxrss` survives exec, so a child started by a big process would report its parent's
    peak (subprocess forks, or vforks, from that parent)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def run_bench(settings: Settings, requests: int = 200) -> dict[str, Any]:
    """Cold load (empty store: parse + index), warm load (a new process's view of a filled
    store: read + index), then predict latency over `requests` generated prompts. Memory is
    the peak resident size of each process: `rss_mb` of this one (cold load, then the
    predictions), `warm_rss_mb` of the one that made the warm load."""
    with tempfile.TemporaryDirectory(prefix="opensesame-bench-") as folder:
        path = Path(folder) / "store.json"
        started = time.perf_counter()
        cold = Service(settings, SpecStore(path, settings.cache_ttl_seconds))
        cold.set_sources(settings.specs, settings.workspace or None)
        catalog = cold.load()
        cold_ms = (time.perf_counter() - started) * 1000
        # A spec that fails to load is bad input (exit 2), not a store failure: failed specs
        # are never stored, so the warm load below would miss them.
        if catalog.errors:
            first, more = catalog.errors[0], len(catalog.errors) - 1
            suffix = f" (and {more} more spec(s) failed)" if more else ""
            raise SpecError(first.source, f"{first.error}{suffix}")
        if not catalog.operations:
            raise CatalogEmpty("no operations loaded: the specs define no paths")

        warm_ms, warm_rss = _warm_load_in_a_new_process(settings, path)

    prompts = bench_prompts(catalog, requests)
    predictor = cold.predictor
    for request in prompts[:20]:  # warm-up: first calls pay for lazy imports and caches
        predictor.predict(request)
    latencies = []
    for request in prompts:
        started = time.perf_counter()
        predictor.predict(request)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "specs": len(catalog.spec_names()),
        "operations": len(catalog.operations),
        "cold_load_ms": round(cold_ms, 1),
        "warm_load_ms": round(warm_ms, 1),
        "predict_p50_ms": round(float(np.percentile(latencies, 50)), 3),
        "predict_p95_ms": round(float(np.percentile(latencies, 95)), 3),
        "requests": len(latencies),
        "rss_mb": _rss_mb(),
        "warm_rss_mb": warm_rss,
    }


def _warm_load_in_a_new_process(settings: Settings, path: Path) -> tuple[float, float]:
    """What a restart costs: a fresh interpreter (no caches of ours) reads the filled store
    and builds the index. Interpreter start and imports are not counted."""
    arguments = json.dumps(
        {"specs": settings.specs, "workspace": settings.workspace, "store": str(path)}
    )
    done = subprocess.run(
        [sys.executable, "-m", "opensesame_predictor.offline.bench", arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the warm load failed: {done.stderr.strip()[-500:]}")
    result = json.loads(done.stdout)
    if result["misses"]:
        raise RuntimeError("the warm load missed the store; the store is not working")
    return float(result["warm_load_ms"]), float(result["rss_mb"])


def _warm_load_child(arguments: str) -> None:
    options = json.loads(arguments)
    settings = Settings(specs=options["specs"], workspace=options["workspace"])
    started = time.perf_counter()
    runtime = Service(settings, SpecStore(Path(options["store"]), settings.cache_ttl_seconds))
    runtime.set_sources(settings.specs, settings.workspace or None)
    runtime.load()
    elapsed = (time.perf_counter() - started) * 1000
    done = {"warm_load_ms": elapsed, "misses": runtime.store.stats.misses, "rss_mb": _rss_mb()}
    print(json.dumps(done))


if __name__ == "__main__":
    _warm_load_child(sys.argv[1])
