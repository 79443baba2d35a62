"""kopf handlers, one module per kind. Thin: parse, call a service, write status.

Importing this package registers every handler with kopf.
"""

from ferry.handlers import backfill, cluster, lifecycle, observe, snapshot  # noqa: F401
