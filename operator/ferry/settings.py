"""Every operator setting, read once at start-up and passed down.

Flags of ``ferry run``/``ferry worker`` win over ``FERRY_*`` environment variables,
which win over the defaults here. Nothing below this module reads the environment.

| variable | field | default |
|---|---|---|
| FERRY_NAMESPACES | namespaces (comma-separated) | all namespaces |
| FERRY_LIVENESS_ENDPOINT | liveness_endpoint (empty: off) | http://0.0.0.0:8080/healthz |
| FERRY_LOG_FORMAT | log_format (json, plain) | json |
| FERRY_METRICS_PORT | metrics_port (0: off) | 9090 |
| FERRY_PEERING | peering | standalone |
| FERRY_LEASE_SECONDS | lease_seconds: a work item's lease | 60 |
| FERRY_CLEANUP_TIMEOUT | cleanup_timeout: deletion gives up after | 600 |
| FERRY_WORKER_IMAGE | worker_image (pods executor) | DEFAULT_WORKER_IMAGE |
| FERRY_WORKER_SERVICE_ACCOUNT | worker_service_account | ferry |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

DEFAULT_WORKER_IMAGE = "ghcr.io/ferry/ferry:0.1.0"
DEFAULT_LIVENESS = "http://0.0.0.0:8080/healthz"


@dataclass(frozen=True)
class OperatorOptions:
    namespaces: list[str] = field(default_factory=list)
    liveness_endpoint: str | None = DEFAULT_LIVENESS
    log_format: str = "json"
    verbose: bool = False
    peering: str | None = None
    metrics_port: int = 9090
    lease_seconds: float = 60.0
    cleanup_timeout: float = 600.0
    worker_image: str = DEFAULT_WORKER_IMAGE
    worker_service_account: str = "ferry"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorOptions:
        """Defaults overridden by whichever FERRY_* variables are set (and valid)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"FERRY_{f.name.upper()}")
            if raw is None and f.name == "liveness_endpoint":
                raw = env.get("FERRY_LIVENESS_ENDPOINT")
            if raw is None:
                continue
            values[f.name] = _parse(f.name, raw)
        return cls(**{k: v for k, v in values.items() if v is not _INVALID})

    def with_(self, **changes: Any) -> OperatorOptions:
        """A copy with the given fields changed; None leaves a field as it is."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_INVALID = object()


def _parse(name: str, raw: str) -> Any:
    if name == "namespaces":
        return [n for n in raw.split(",") if n]
    if name == "liveness_endpoint":
        return raw or None
    if name == "peering":
        return raw or None
    if name == "verbose":
        return raw.lower() in ("1", "true", "yes")
    try:
        if name == "metrics_port":
            return int(raw)
        if name in ("lease_seconds", "cleanup_timeout"):
            return max(0.0, float(raw))
    except ValueError:
        return _INVALID  # a typo in a variable keeps the default rather than crash
    return raw
