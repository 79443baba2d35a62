"""The operator process: kopf with Ferry's handlers and settings."""

from __future__ import annotations

import asyncio
import logging

import kopf

from ferry import allocator, metrics
from ferry.runtime import Runtime
from ferry.settings import OperatorOptions


def configure_logging(options: OperatorOptions) -> None:
    fmt = kopf.LogFormat.JSON if options.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=options.verbose, log_format=fmt, log_refkey="object")


def run(options: OperatorOptions) -> int:
    """Run until SIGTERM/SIGINT; kopf stops the daemons and exits cleanly."""
    import ferry.handlers  # noqa: F401  (registers the handlers)

    configure_logging(options)
    allocator.release_big_buffers()
    metrics.serve(options.metrics_port, options.bind_address)
    logging.getLogger("ferry").info(
        "starting Ferry operator", extra={"namespaces": options.namespaces or "all"})
    asyncio.run(kopf.operator(
        standalone=options.peering is None,
        peering_name=options.peering,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        liveness_endpoint=options.liveness_endpoint,
        memo=Runtime(options=options),
    ))
    return 0
