"""Liveness and readiness: the catalog's load state, the store, the refinement model and the
cache statistics, as /health reports them."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from opensesame_predictor import __version__
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.http.ratelimit import RateLimitGuard

log = logging.getLogger(__name__)

NAME = "opensesame-predictor"


class Liveness(BaseModel):
    name: str
    version: str
    status: Literal["ok"] = "ok"


class CatalogHealth(BaseModel):
    status: Literal["loading", "ok", "empty", "failed"]
    specs: int = Field(description="Specs loaded without error.")
    operations: int
    failed_specs: int = 0
    spec_names: list[str] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Why loading failed, when it did.")


class StoreHealth(BaseModel):
    status: Literal["ok", "read_only"] = Field(
        description="read_only: the store file cannot be written, so every start parses afresh."
    )
    backend: str
    ttl_seconds: float


class LLMHealth(BaseModel):
    provider: str
    status: Literal["disabled", "reachable", "unreachable"]
    refiner: dict[str, Any] | None = None  # budget, last outcome, back-off of the refiner


class CacheHealth(BaseModel):
    l1_hits: int
    l2_hits: int
    misses: int
    writes: int
    stale_served: int
    quarantined: int
    hit_ratio: float


class LimitsHealthModel(BaseModel):
    """Where the rate limits count; degraded while a shared storage is unreachable (each
    process then counts alone)."""

    status: Literal["ok", "degraded"]
    storage: str
    shared: bool
    error: str | None = None


class HealthComponents(BaseModel):
    catalog: CatalogHealth
    store: StoreHealth
    llm: LLMHealth
    cache: CacheHealth
    rate_limits: LimitsHealthModel | None = None


class Health(BaseModel):
    # degraded: serving, with a part not as promised (rate limits counted per process)
    status: Literal["ok", "degraded", "loading", "unavailable"]
    name: str
    version: str
    components: HealthComponents


LLMProbe = Callable[[Service], Awaitable[LLMHealth]]


async def probe_llm(service: Service) -> LLMHealth:
    """Whether the refinement model answers, and the refiner's state (budget, last outcome,
    back-off)."""
    health = await service.refiner_health()
    return LLMHealth(provider=health.provider, status=health.status, refiner=health.refiner)


def catalog_health(service: Service) -> CatalogHealth:
    catalog = service.catalog
    names = catalog.spec_names()
    state = service.state
    if state != "ready":
        status: Literal["loading", "ok", "empty", "failed"] = state
    else:
        status = "ok" if catalog.operations else "empty"
    return CatalogHealth(
        status=status,
        specs=len(names),
        operations=len(catalog.operations),
        failed_specs=len(catalog.errors),
        spec_names=names,
        error=service.failure,
    )


def store_health(service: Service) -> StoreHealth:
    path = service.store.path
    writable = path is None or os.access(path if path.exists() else path.parent, os.W_OK)
    return StoreHealth(
        status="ok" if writable else "read_only",
        backend="tinydb" if path else "memory",
        ttl_seconds=service.store.ttl,
    )


async def health_report(
    service: Service, llm_probe: LLMProbe, guard: RateLimitGuard | None = None
) -> Health:
    catalog = catalog_health(service)
    limits = guard.health() if guard is not None else None
    stats = service.store.stats
    components = HealthComponents(
        catalog=catalog,
        store=store_health(service),
        llm=await llm_probe(service),
        cache=CacheHealth(
            l1_hits=stats.l1_hits,
            l2_hits=stats.l2_hits,
            misses=stats.misses,
            writes=stats.writes,
            stale_served=stats.stale_served,
            quarantined=stats.quarantined,
            hit_ratio=round(stats.hit_ratio, 4),
        ),
        rate_limits=None
        if limits is None
        else LimitsHealthModel(
            status="degraded" if limits.degraded else "ok",
            storage=limits.storage,
            shared=limits.shared,
            error=limits.error,
        ),
    )
    status: Literal["ok", "degraded", "loading", "unavailable"] = (
        ("degraded" if limits is not None and limits.degraded else "ok")
        if catalog.status == "ok"
        else "loading"
        if catalog.status == "loading"
        else "unavailable"
    )
    return Health(status=status, name=NAME, version=__version__, components=components)
