"""The operator process: kopf with Ferry's handlers and settings."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import kopf

from ferry import metrics
from ferry.runtime import Runtime


@dataclass
class OperatorOptions:
    namespaces: list[str] = field(default_factory=list)
    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    log_format: str = "json"
    verbose: bool = False
    peering: str | None = None
    metrics_port: int = 9090


def configure_logging(options: OperatorOptions) -> None:
    fmt = kopf.LogFormat.JSON if options.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=options.verbose, log_format=fmt, log_refkey="object")


def run(options: OperatorOptions) -> int:
    """Run until SIGTERM/SIGINT; kopf stops the daemons and exits cleanly."""
    import ferry.handlers  # noqa: F401  (registers the handlers)

    configure_logging(options)
    metrics.serve(options.metrics_port)
    logging.getLogger("ferry").info(
        "starting Ferry operator", extra={"namespaces": options.namespaces or "all"})
    asyncio.run(kopf.operator(
        standalone=options.peering is None,
        peering_name=options.peering,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        liveness_endpoint=options.liveness_endpoint,
        memo=Runtime(),
    ))
    return 0
