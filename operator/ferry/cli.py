"""The `ferry` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ferry import __version__


def _cmd_crds(args: argparse.Namespace) -> int:
    from ferry import crdgen

    for path in crdgen.write_all(Path(args.out)):
        print(f"wrote {path}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from ferry.operator import OperatorOptions, run

    namespaces = [n for item in args.namespace for n in item.split(",") if n]
    return run(OperatorOptions(
        namespaces=namespaces,
        liveness_endpoint=args.liveness or None,
        log_format=args.log_format,
        verbose=args.verbose,
        peering=args.peering,
    ))


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
        "--namespace", "-n", action="append",
        default=[os.environ["FERRY_NAMESPACES"]] if os.environ.get("FERRY_NAMESPACES") else [],
        help="namespace to watch (repeat or comma-separate; env FERRY_NAMESPACES); "
        "default: all namespaces")
    run.add_argument("--liveness", default=os.environ.get(
        "FERRY_LIVENESS_ENDPOINT", "http://0.0.0.0:8080/healthz"),
        help="liveness endpoint URL; empty to disable (env FERRY_LIVENESS_ENDPOINT)")
    run.add_argument("--log-format", choices=["json", "plain"],
                     default=os.environ.get("FERRY_LOG_FORMAT", "json"),
                     help="log format (env FERRY_LOG_FORMAT; default json)")
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    run.add_argument("--peering", default=os.environ.get("FERRY_PEERING") or None,
                     help="kopf peering name: replicas sharing it elect one active operator "
                     "(needs kopf's peering CRDs); default: standalone")
    run.set_defaults(func=_cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
