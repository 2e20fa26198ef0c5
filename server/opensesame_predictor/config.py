"""One Settings object: environment variables `OPENSESAME_*`, overridden by CLI flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from opensesame_predictor.core.models import MAX_PREDICTIONS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENSESAME_", extra="ignore")

    # HTTP mode
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_keys: str = Field(
        default="",
        description="SHA-256 hashes ('sha256:<hex>', comma-separated) of the API keys the HTTP "
        "service accepts; empty: no keys (then it binds to loopback only, unless told "
        "--insecure-no-auth). `opensesame-predictor api-key` makes one.",
    )
    open_docs_and_metrics: bool = Field(
        default=False,
        description="With API keys: serve /metrics, /docs, /redoc and /openapi.json without one.",
    )

    # store
    database_url: str = Field(
        default="",
        description="TinyDB file of the spec store (a path or tinydb:///path); "
        "empty means the user cache directory.",
    )
    cache_ttl_seconds: float = Field(default=3600.0, gt=0)
    store_max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=0, description="parsed specs kept; the oldest go first"
    )
    store_max_age_seconds: float = Field(
        default=7 * 24 * 3600.0,
        ge=0,
        description="entries not stored or revalidated for this long go (0: never)",
    )

    # request limits and guardrails
    max_prompt_length: int = Field(default=4096, ge=1, le=1_000_000)
    enable_guardrails: bool = True

    # spec sources
    workspace: str = ""
    specs: list[str] = Field(default_factory=list)
    allow_private_urls: bool = Field(
        default=False,
        description="Allow spec URLs whose host resolves to loopback, private or link-local "
        "addresses (off by default: it guards against SSRF).",
    )
    fetch_timeout_seconds: float = Field(default=10.0, gt=0)
    fetch_max_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    max_spec_bytes: int = Field(default=64 * 1024 * 1024, gt=0)

    # optional LLM refinement
    llm_provider: Literal["none", "placeholder", "ollama"] = "none"
    ollama_host: str = "http://127.0.0.1:11434"
    ollama_model: str = "llama3.2"
    llm_timeout_ms: int = Field(default=1500, ge=50)
    llm_top_k: int = Field(default=10, ge=1, le=MAX_PREDICTIONS)

    log_level: str = "WARNING"

    def database_path(self) -> Path:
        """Where the TinyDB file of the store lives."""
        url = self.database_url.strip()
        if url.startswith("tinydb://"):
            url = url.removeprefix("tinydb://")
        if url:
            return Path(url).expanduser()
        cache_dir = Path(platformdirs.user_cache_dir("opensesame-predictor", appauthor=False))
        return cache_dir / "store.json"

    # HTTP mode (surfaces/http/): request size and rate limits
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Largest /predict request body (413 above)."
    )
    # what one connection may hold: slow or idle clients are cut off, connections capped
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    http_keep_alive_seconds: int = Field(default=5, ge=1)
    http_max_connections: int = Field(default=512, ge=1)
    http_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="worker processes of the HTTP service (more than one needs a shared "
        "rate-limit storage, or rate limits off)",
    )
    trusted_proxies: str = Field(
        default="",
        description="addresses (comma-separated, CIDR allowed) whose X-Forwarded-For is "
        "trusted; empty: none, a client is its socket address",
    )
    rate_limit_enabled: bool = Field(
        default=True,
        description="Rate-limit POST /predict (also needs enable_guardrails); "
        "off for load benchmarks.",
    )
    rate_limit_per_user: str = "60/minute"
    rate_limit_global: str = "1200/minute"
    rate_limit_block_after: int = Field(
        default=10, ge=0, description="Refused requests in a minute before a block (0: never)."
    )
    rate_limit_block_seconds: int = Field(default=300, ge=1)
    rate_limit_storage_uri: str = Field(
        default="memory://", description="A `limits` storage URI, e.g. redis://host:6379."
    )
    rate_limit_salt: SecretStr = Field(
        default=SecretStr(""),
        description="Salt of the hashed user ids; empty means random per process "
        "(set it when several processes share a storage).",
    )

    def environment(self) -> dict[str, str]:
        """These settings as OPENSESAME_* variables, for processes that read them back (the
        HTTP workers): `Settings()` in such a process equals this one."""
        variables: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, list | dict):
                text = json.dumps(value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            variables[f"OPENSESAME_{name.upper()}"] = text
        return variables
