"""The `ferry` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ferry import __version__


def _cmd_crds(args: argparse.Namespace) -> int:
    from ferry import crdgen

    for path in crdgen.write_all(Path(args.out)):
        print(f"wrote {path}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from ferry.operator import run
    from ferry.settings import OperatorOptions

    namespaces = [n for item in args.namespace for n in item.split(",") if n]
    options = OperatorOptions.from_env().with_(
        namespaces=namespaces or None, log_format=args.log_format, verbose=args.verbose,
        peering=args.peering, metrics_port=args.metrics_port,
        cleanup_timeout=args.cleanup_timeout)
    if args.liveness is not None:  # an empty flag turns the endpoint off
        options = replace(options, liveness_endpoint=args.liveness or None)
    return run(options)


def _cmd_snapshot_ls(args: argparse.Namespace) -> int:
    import json

    from ferry.repository import RepositoryError, open_store, read_repository

    try:
        store = open_store(args.repository, endpoint_url=args.endpoint_url,
                           region=args.region, path_style=args.path_style)
        contents = read_repository(store, details=args.details or args.json)
    except (RepositoryError, ValueError) as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # S3 errors: say which, never a traceback with a stack
        print(f"ferry: cannot read {args.repository}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(contents.to_json(), indent=2))
        return 0
    rows = [("NAME", "UUID", "STATE", "VERSION", "INDICES")]
    for s in contents.snapshots:
        rows.append((s.name, s.uuid, s.state or "?", s.version or "?",
                     f"{len(s.indices)}: {','.join(s.indices)}" if s.indices else "0"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4])
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from ferry.operator import configure_logging
    from ferry.settings import OperatorOptions
    from ferry.worker import run_worker

    namespace, _, name = args.backfill.partition("/")
    if not name:
        raise SystemExit("--backfill takes NAMESPACE/NAME")
    options = OperatorOptions.from_env().with_(log_format=args.log_format)
    configure_logging(options)
    return run_worker(namespace, name, options, threads=args.threads)


def _cmd_status(args: argparse.Namespace) -> int:
    from ferry.clients.kube import current_namespace
    from ferry.statusview import show

    namespace = None if args.all_namespaces else (args.namespace or current_namespace())
    return show(namespace, args.watch, args.interval)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferry",
        description="Ferry migrates Elasticsearch and OpenSearch clusters declaratively.",
    )
    parser.add_argument("--version", action="version", version=f"ferry {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crds = sub.add_parser("crds", help="generate the CustomResourceDefinitions from the models")
    crds.add_argument("--out", default="crds", help="output folder (default: crds)")
    crds.set_defaults(func=_cmd_crds)

    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "--namespace", "-n", action="append", default=[],
        help="namespace to watch (repeat or comma-separate; env FERRY_NAMESPACES); "
        "default: all namespaces")
    run.add_argument("--liveness", default=None,
        help="liveness endpoint URL; empty to disable (env FERRY_LIVENESS_ENDPOINT)")
    run.add_argument("--log-format", choices=["json", "plain"], default=None,
                     help="log format (env FERRY_LOG_FORMAT; default json)")
    run.add_argument("--metrics-port", type=int, default=None,
                     help="port of the Prometheus /metrics endpoint; 0 disables "
                     "(env FERRY_METRICS_PORT; default 9090)")
    run.add_argument("--verbose", "-v", action="store_true", default=None,
                     help="debug logging")
    run.add_argument("--peering", default=None,
                     help="kopf peering name: replicas sharing it elect one active operator "
                     "(needs kopf's peering CRDs); default: standalone")
    run.add_argument("--cleanup-timeout", type=float, default=None, metavar="SECONDS",
                     help="how long deleting a resource retries against an unreachable "
                     "cluster before letting go with a Warning event (env "
                     "FERRY_CLEANUP_TIMEOUT; default 600)")
    run.set_defaults(func=_cmd_run)

    status = sub.add_parser("status", help="Ferry resources of a namespace, with progress "
                            "(also `kubectl ferry status`)")
    status.add_argument("--namespace", "-n", help="namespace (default: the context's)")
    status.add_argument("--all-namespaces", "-A", action="store_true")
    status.add_argument("--watch", "-w", action="store_true", help="refresh until Ctrl-C")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    status.set_defaults(func=_cmd_status)

    worker = sub.add_parser("worker", help="run copy workers for one Backfill (pods executor)")
    worker.add_argument("--backfill", required=True, metavar="NAMESPACE/NAME",
                        help="the Backfill to work on")
    worker.add_argument("--threads", type=int, default=1,
                        help="worker threads in this process (default 1)")
    worker.add_argument("--log-format", choices=["json", "plain"], default=None,
                        help="log format (env FERRY_LOG_FORMAT; default json)")
    worker.set_defaults(func=_cmd_worker)

    snapshot = sub.add_parser("snapshot", help="snapshot repositories, without a cluster")
    snapshot_sub = snapshot.add_subparsers(dest="snapshot_command", required=True,
                                           metavar="COMMAND")
    ls = snapshot_sub.add_parser(
        "ls", help="list the snapshots in a repository, read from its own files")
    ls.add_argument("repository", help="a repository directory, or s3://bucket/base/path "
                    "(credentials from the AWS default chain)")
    ls.add_argument("--json", action="store_true", help="JSON output, with times and shards")
    ls.add_argument("--details", action="store_true",
                    help="read every snapshot's metadata blob (times, shard counts)")
    ls.add_argument("--endpoint-url", default=None,
                    help="S3 endpoint for S3-compatible stores (or env AWS_ENDPOINT_URL)")
    ls.add_argument("--region", default=None, help="S3 region (or env AWS_REGION)")
    ls.add_argument("--path-style", action="store_true", help="path-style S3 addressing")
    ls.set_defaults(func=_cmd_snapshot_ls)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
