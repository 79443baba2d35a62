"""The `ferry` command line.

Every command answers what a person can fix — a bad or missing kubeconfig, an API
server that cannot be reached or refuses, a resource that does not exist — with one
line on stderr and exit code 1, never a traceback (:func:`main`, :func:`describe_error`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ferry import __version__


class CommandError(Exception):
    """A failure the command has already put into words (printed as ``ferry: ...``)."""


def _cmd_crds(args: argparse.Namespace) -> int:
    from ferry import crdgen
    from ferry.api import KINDS

    if args.out == "-":  # `ferry crds --out - | kubectl apply -f -`
        sys.stdout.write("---\n".join(crdgen.render(kind) for kind in KINDS))
        return 0
    for path in crdgen.write_all(Path(args.out)):
        print(f"wrote {path}")
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    from ferry import docsgen

    for path in docsgen.write_all(Path(args.out)):
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
    _connect(args)  # a bad kubeconfig or a dead API server: one line, not kopf's retries
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
    _print_snapshots(store, contents, args.details)
    return 0


def _cmd_snapshot_cat(args: argparse.Namespace) -> int:
    """Each live document of a snapshot as a JSON line, read from the repository's files."""
    import json

    from ferry.repository import RepositoryError, open_store, read_repository
    from ferry.repository.lucene import snapshot_documents

    try:
        store = open_store(args.repository, endpoint_url=args.endpoint_url,
                           region=args.region, path_style=args.path_style)
        contents = read_repository(store, details=True)
        if args.snapshot:
            entry = contents.snapshot(args.snapshot)
            if entry is None:
                raise RepositoryError(f"{args.repository} has no snapshot {args.snapshot} "
                                      f"(it has: {', '.join(s.name for s in contents.snapshots)})")
        elif contents.snapshots:  # the latest; index-N lists them oldest first
            entry = max(reversed(contents.snapshots),
                        key=lambda s: s.start_time.timestamp() if s.start_time else 0)
        else:
            raise RepositoryError(f"{args.repository} holds no snapshot")
        for doc in snapshot_documents(store, contents, entry, args.index):
            if doc.source is None:  # _source disabled in the mapping: nothing to print
                print(f"ferry: {doc.index}/{doc.id}: no _source stored; skipped",
                      file=sys.stderr)
                continue
            sys.stdout.write(json.dumps(doc.to_json(), ensure_ascii=False) + "\n")
    except (RepositoryError, ValueError) as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `ferry snapshot cat ... | head`: main() handles it
        raise
    except Exception as exc:  # S3 errors: say which, never a traceback with a stack
        print(f"ferry: cannot read {args.repository}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1
    return 0


def _print_snapshots(store: Any, contents: Any, details: bool) -> None:
    """The snapshots as columns; with details, their start times and shard counts,
    and under each one its indices with their shards, live documents and size."""
    from ferry.repository.shards import index_details
    from ferry.statusview.fmt import count, size

    if not details:
        rows = [("NAME", "UUID", "STATE", "VERSION", "INDICES")]
        rows += [(s.name, s.uuid, s.state or "?", s.version or "?",
                  f"{len(s.indices)}: {','.join(s.indices)}" if s.indices else "0")
                 for s in contents.snapshots]
        print("\n".join(_columns(rows)))
        return
    rows = [("NAME", "UUID", "STATE", "VERSION", "START", "SHARDS", "FAILED")]
    rows += [(s.name, s.uuid, s.state or "?", s.version or "?",
              s.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") if s.start_time else "-",
              count(s.shards_total), count(s.shards_failed)) for s in contents.snapshots]
    lines = _columns(rows)
    print(lines[0])
    for snap, line in zip(contents.snapshots, lines[1:], strict=True):
        print(line)
        indices = [("INDEX", "SHARDS", "DOCS", "SIZE")]
        indices += [(i.name, str(i.shards), count(i.documents), size(i.size_bytes))
                    for i in index_details(store, contents, snap)]
        print("\n".join("    " + row for row in _columns(indices, right=(1, 2, 3))))


def _columns(rows: list[tuple[str, ...]], right: tuple[int, ...] = ()) -> list[str]:
    """Rows as aligned text columns (the last left-aligned one is not padded)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) if i in right else c.ljust(w)
                      for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]


def _cmd_worker(args: argparse.Namespace) -> int:
    from ferry.operator import configure_logging
    from ferry.settings import OperatorOptions
    from ferry.worker import run_worker

    namespace, _, name = args.backfill.partition("/")
    if not name:
        raise SystemExit("--backfill takes NAMESPACE/NAME")
    options = OperatorOptions.from_env().with_(log_format=args.log_format)
    _connect(args)  # before logging is set up: urllib3's retry warnings are not the answer
    configure_logging(options)
    return run_worker(namespace, name, options, threads=args.threads)


def _cmd_status(args: argparse.Namespace) -> int:
    from ferry.clients.kube import current_namespace
    from ferry.statusview import Query, show

    if args.all_namespaces and args.resource:
        raise CommandError("a resource (KIND/NAME) is looked up in one namespace: drop -A")
    Query(None, args.resource).target()  # a malformed KIND/NAME before any connection
    _connect(args)
    namespace = None if args.all_namespaces else (
        args.namespace or current_namespace(args.kubeconfig, args.context))
    return show(Query(namespace, args.resource, args.output), args.watch, args.interval)


def _cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


def _connect(args: argparse.Namespace) -> Any:
    """The API client for ``--kubeconfig``/``--context`` (or the defaults), checked
    with one cheap request (``/version``) so that an unusable kubeconfig or API server
    is reported before any work starts."""
    import yaml
    from kubernetes import client, config

    from ferry.clients import kube

    kubeconfig, context = getattr(args, "kubeconfig", None), getattr(args, "context", None)
    path = kube.kubeconfig_path(kubeconfig)
    in_cluster = kubeconfig is None and context is None and kube.in_pod()
    files = [Path(p).expanduser() for p in path.split(os.pathsep) if p]
    if not in_cluster and not any(f.is_file() for f in files):
        raise CommandError(f"no kubeconfig at {path} (use --kubeconfig or KUBECONFIG)")
    try:
        api = kube.api_client(kubeconfig, context)
    except config.ConfigException as exc:
        raise CommandError(f"kubeconfig {path}: {exc}") from None
    except (TypeError, AttributeError, KeyError, ValueError, yaml.YAMLError) as exc:
        # The client library fails on malformed files with whatever broke inside it.
        raise CommandError(f"kubeconfig {path} is not a valid kubeconfig (a YAML mapping "
                           f"of clusters, users and contexts): {type(exc).__name__}") from None
    client.VersionApi(api).get_code(_request_timeout=15)
    return api


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferry",
        description="Ferry migrates Elasticsearch and OpenSearch clusters declaratively.",
    )
    parser.add_argument("--version", action="version", version=f"ferry {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crds = sub.add_parser("crds", help="generate the CustomResourceDefinitions from the models")
    crds.add_argument("--out", default="crds",
                      help="output folder (default: crds); - writes every CRD to stdout")
    crds.set_defaults(func=_cmd_crds)

    docs = sub.add_parser("docs", help="generate the API reference (Markdown) from the models")
    docs.add_argument("--out", default="docs/api", help="output folder (default: docs/api)")
    docs.set_defaults(func=_cmd_docs)

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

    status = sub.add_parser(
        "status", help="Ferry resources of a namespace with progress, or one in full "
        "(also `kubectl ferry status`); exit code 1 when anything shown is Failed",
        description="Every Cluster, Snapshot and Backfill of a namespace, or one resource "
        "in full (`ferry status backfill/NAME`: per-index rows, failures by reason). "
        "Exit code 1 when anything shown is Failed.")
    status.add_argument("resource", nargs="?", metavar="KIND/NAME",
                        help="one resource in full, e.g. backfill/migrate, cluster/source, "
                        "snapshot/before (short names work too: bf/, fcl/, fsnap/)")
    status.add_argument("--output", "-o", choices=["json", "yaml"], default=None,
                        help="for scripts: names, phases, progress and conditions")
    status.add_argument("--namespace", "-n", help="namespace (default: the context's)")
    status.add_argument("--all-namespaces", "-A", action="store_true",
                        help="every namespace")
    status.add_argument("--kubeconfig", default=None,
                        help="kubeconfig file (default: KUBECONFIG, then ~/.kube/config)")
    status.add_argument("--context", default=None, help="kubeconfig context to use")
    status.add_argument("--watch", "-w", action="store_true", help="refresh until Ctrl-C")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    status.set_defaults(func=_cmd_status)

    completion = sub.add_parser(
        "completion", help="print a shell completion script",
        description="Print a completion script: `source <(ferry completion bash)`, or for "
        "zsh `ferry completion zsh > \"${fpath[1]}/_ferry\"`.")
    completion.add_argument("shell", choices=["bash", "zsh"])
    completion.set_defaults(func=_cmd_completion)

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
    _repository_arguments(ls)
    ls.add_argument("--json", action="store_true", help="JSON output, with times and shards")
    ls.add_argument("--details", action="store_true",
                    help="read every snapshot's metadata (times, shard counts) and each "
                    "index's shards, live documents and size")
    ls.set_defaults(func=_cmd_snapshot_ls)
    cat = snapshot_sub.add_parser(
        "cat", help="print a snapshot's live documents as JSON lines, read from its files")
    _repository_arguments(cat)
    cat.add_argument("--snapshot", default=None, help="the snapshot (default: the latest)")
    cat.add_argument("--index", action="append", default=None, metavar="NAME",
                     help="only this index (repeatable; default: all)")
    cat.set_defaults(func=_cmd_snapshot_cat)
    return parser


def _repository_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a repository is, for the `snapshot` commands: a path or an S3 prefix."""
    parser.add_argument("repository", help="a repository directory, or s3://bucket/base/path "
                        "(credentials from the AWS default chain)")
    parser.add_argument("--endpoint-url", default=None,
                        help="S3 endpoint for S3-compatible stores (or env AWS_ENDPOINT_URL)")
    parser.add_argument("--region", default=None, help="S3 region (or env AWS_REGION)")
    parser.add_argument("--path-style", action="store_true", help="path-style S3 addressing")


def describe_error(exc: BaseException) -> str | None:
    """One line for a failure a person can act on; None for a bug (left to raise)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError, MaxRetryError

    from ferry.statusview import NotFound

    if isinstance(exc, CommandError | NotFound):
        return str(exc)
    if isinstance(exc, MaxRetryError | HTTPError):
        reason = str(getattr(exc, "reason", None) or exc)
        # urllib3 wraps the cause ("...: [Errno 111] Connection refused"): keep the cause.
        reason = reason[reason.find("[Errno"):] if "[Errno" in reason else reason
        return f"cannot reach the API server at {_server()}: {reason.rstrip(')')}"
    if isinstance(exc, ApiException):
        if exc.status == 404:
            return (f"the API server at {_server()} has no such resource: are Ferry's CRDs "
                    "installed? (`ferry crds --out - | kubectl apply -f -`)")
        return f"the API server at {_server()} answered {exc.status} {exc.reason}: " \
            f"{_api_message(exc)}"
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc}"
    return None


def _server() -> str:
    from ferry.clients import kube

    try:
        return str(kube.api_client().configuration.host)
    except Exception:  # the client itself could not be built: say so plainly
        return "(unknown)"


def _api_message(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body).get("message") or exc.body)
    except (TypeError, ValueError, AttributeError):
        return str(exc.body or "").strip().replace("\n", " ") or "no message"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except BrokenPipeError:
        # `ferry ... | head`: the reader left; say nothing more (as the Python docs advise).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        line = describe_error(exc)
        if line is None:
            raise
        print(f"ferry: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
