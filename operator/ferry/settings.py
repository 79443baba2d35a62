"""Every operator setting, read once at start-up and passed down.

Flags of ``ferry run``/``ferry worker`` win over ``FERRY_*`` environment variables,
which win over the defaults here. Nothing below this module reads the environment.

| variable | field | default |
|---|---|---|
| FERRY_NAMESPACES | namespaces (comma-separated) | all namespaces |
| FERRY_LIVENESS_ENDPOINT | liveness_endpoint (empty: off) | http://0.0.0.0:8080/healthz |
| FERRY_LOG_FORMAT | log_format (json, plain) | json |
| FERRY_METRICS_PORT | metrics_port (0: off) | 9090 |
| FERRY_BIND_ADDRESS | bind_address: where /metrics listens (workers' too) | 0.0.0.0 |
| FERRY_PEERING | peering | standalone |
| FERRY_LEASE_SECONDS | lease_seconds: a work item's lease | 60 |
| FERRY_CLEANUP_TIMEOUT | cleanup_timeout: deletion gives up after | 600 |
| FERRY_RETRY_SECONDS | retry_seconds: first re-check of a failed Cluster check | 5 |
| FERRY_WORKER_IMAGE | worker_image (pods executor; the chart passes the operator's) | none |
| FERRY_WORKER_SERVICE_ACCOUNT | worker_service_account | ferry |
| FERRY_WORKER_TEMPLATE | worker_template: a YAML file read now (the chart mounts it) | none |
| FERRY_WORKER_METRICS_PORT | worker_metrics_port: /metrics of worker pods (0: off) | 9090 |

The worker template is a mapping of the keys in WORKER_TEMPLATE_KEYS (what a worker pod
takes from the chart: pull secrets, resources, scheduling, security, volumes, env, host
network). A missing file is warned about and an unreadable one logged as an error; both
leave the template empty, as a typo in a variable keeps its default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import yaml

DEFAULT_LIVENESS = "http://0.0.0.0:8080/healthz"
DEFAULT_BIND = "0.0.0.0"
# What a worker template may hold, and the type of each key's value.
WORKER_TEMPLATE_KEYS: dict[str, type] = {
    "imagePullPolicy": str, "imagePullSecrets": list, "resources": dict,
    "nodeSelector": dict, "tolerations": list, "affinity": dict,
    "podSecurityContext": dict, "securityContext": dict, "volumes": list,
    "volumeMounts": list, "env": list, "hostNetwork": bool,
}

log = logging.getLogger("ferry.settings")


@dataclass(frozen=True)
class OperatorOptions:
    namespaces: list[str] = field(default_factory=list)
    liveness_endpoint: str | None = DEFAULT_LIVENESS
    log_format: str = "json"
    verbose: bool = False
    peering: str | None = None
    metrics_port: int = 9090
    # Host networking on a node whose pod address is loopback: 127.0.0.1 keeps the
    # ports off the node's other addresses.
    bind_address: str = DEFAULT_BIND
    lease_seconds: float = 60.0
    cleanup_timeout: float = 600.0
    retry_seconds: float = 5.0
    # No default: an image that is not the operator's own would be a guess.
    worker_image: str = ""
    worker_service_account: str = "ferry"
    worker_template: dict[str, Any] = field(default_factory=dict)
    worker_metrics_port: int = 9090

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
    if name == "bind_address":
        return raw or DEFAULT_BIND
    if name == "verbose":
        return raw.lower() in ("1", "true", "yes")
    if name == "worker_template":
        return read_worker_template(raw)
    try:
        if name in ("metrics_port", "worker_metrics_port"):
            return int(raw)
        if name in ("lease_seconds", "cleanup_timeout", "retry_seconds"):
            return max(0.0, float(raw))
    except ValueError:
        return _INVALID  # a typo in a variable keeps the default rather than crash
    return raw


def read_worker_template(path: str) -> Any:
    """The worker template in the YAML file at ``path`` (empty: none)."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            template = yaml.safe_load(f) or {}
    except FileNotFoundError:
        log.warning("FERRY_WORKER_TEMPLATE: %s does not exist; worker pods get no "
                    "template", path)
        return _INVALID
    except (OSError, yaml.YAMLError) as exc:
        log.error("FERRY_WORKER_TEMPLATE: cannot read %s (%s); worker pods get no "
                  "template", path, exc)
        return _INVALID
    problems = _template_problems(template)
    if problems:
        log.error("FERRY_WORKER_TEMPLATE: %s: %s; worker pods get no template", path,
                  "; ".join(problems))
        return _INVALID
    return template


def _template_problems(template: Any) -> list[str]:
    if not isinstance(template, dict):
        return [f"a mapping is expected, not {type(template).__name__}"]
    problems = [f"unknown key {key!r}" for key in template if key not in WORKER_TEMPLATE_KEYS]
    problems += [f"{key} must be a {WORKER_TEMPLATE_KEYS[key].__name__}"
                 for key, value in template.items()
                 if key in WORKER_TEMPLATE_KEYS and value is not None
                 and not isinstance(value, WORKER_TEMPLATE_KEYS[key])]
    return problems
