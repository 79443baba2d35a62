"""`make demo`: Ferry's main job on an embedded local stack.

    python -m demo up     # start the stack, load data, migrate, show progress
    python -m demo down   # stop everything and remove build/demo

The stack — the test bed's kube-apiserver + etcd, an Elasticsearch 7.10.2 source, an
OpenSearch 2.19 target and the Ferry operator — keeps running after `up` so you can
look around; its state (pids, URLs, kubeconfig, logs) lives in build/demo/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import string
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from testbed import datagen
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.paths import BIN, BUILD, ROOT
from testbed.search import SearchNode

DEMO = BUILD / "demo"
STATE = DEMO / "state.json"
EXAMPLES = ROOT / "examples" / "demo"
INDICES = ["web-logs", "orders", "users"]
console = Console()


def _pids(*procs: Any) -> list[int]:
    return [p.proc.proc.pid for p in procs if p.proc and p.proc.proc]


def down(quiet: bool = False) -> int:
    if STATE.exists():
        state = json.loads(STATE.read_text())
        for pid in state.get("pids", []):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in state.get("pids", [])):
            time.sleep(0.5)
        for pid in state.get("pids", []):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(DEMO, ignore_errors=True)
    if not quiet:
        console.print("demo stopped; build/demo removed")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _render(name: str, values: dict[str, str]) -> str:
    return string.Template((EXAMPLES / name).read_text()).substitute(values)


def _summary(kube: KubeAPIServer, es: SearchNode, os_: SearchNode) -> Table:
    backfill = kube.get("backfill", "default", "migrate") or {}
    rows = {r["name"]: r for r in (backfill.get("status") or {}).get("indices", [])}
    table = Table(title="Migration summary")
    for col in ("index", "source docs", "target docs", "verified"):
        table.add_column(col, justify="right" if "docs" in col else "left")
    for index in INDICES:
        source = es.request("GET", f"/{index}/_count")["count"]  # type: ignore[index]
        os_.request("POST", f"/{index}/_refresh")
        target = os_.request("GET", f"/{index}/_count")["count"]  # type: ignore[index]
        verified = rows.get(index, {}).get("verified")
        table.add_row(index, f"{source:,}", f"{target:,}",
                      "[green]yes[/]" if verified else "[red]no[/]")
    return table


def up(docs: int) -> int:
    from ferry.clients import kube as kube_client
    from ferry.statusview import gather, render

    down(quiet=True)
    DEMO.mkdir(parents=True)
    started = time.monotonic()
    console.print("[bold]Ferry demo[/] — starting the local stack (API server, "
                  "Elasticsearch, OpenSearch) ...")
    kube = KubeAPIServer(workdir=DEMO / "kube").start()
    pids = [p.proc.pid for p in (kube.etcd, kube.apiserver) if p and p.proc]
    repo = DEMO / "repo"
    es = SearchNode("elasticsearch", workdir=DEMO / "elasticsearch",
                    repo_dirs=(repo,)).start()
    os_ = SearchNode("opensearch", workdir=DEMO / "opensearch").start()
    pids += [n.proc.proc.pid for n in (es, os_) if n.proc and n.proc.proc]
    shutil.copy(kube.kubeconfig, DEMO / "kubeconfig")
    STATE.write_text(json.dumps({"pids": pids, "source": es.url, "target": os_.url}))

    console.print(f"loading {docs:,} generated documents (web logs, orders, users) into "
                  f"Elasticsearch {es.number} at {es.url} ...")
    counts = datagen.standard_dataset(es, docs)
    kube.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    kube.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    operator = OperatorProcess(kube.kubeconfig, workdir=DEMO / "operator").start()
    pids += _pids(operator)
    STATE.write_text(json.dumps({"pids": pids, "source": es.url, "target": os_.url,
                                 "metrics": f"http://127.0.0.1:{operator.metrics_port}/metrics"}))
    values = {"SOURCE_URL": es.url, "TARGET_URL": os_.url, "REPO_PATH": str(repo)}
    manifests = "\n---\n".join(_render(n, values) for n in
                               ("clusters.yaml", "snapshot.yaml", "backfill.yaml"))
    kube.kubectl("apply", "-n", "default", "-f", "-", input=manifests)
    console.print("applied examples/demo/: Clusters source and target, Snapshot "
                  "before-migration, Backfill migrate\n")

    os.environ["KUBECONFIG"] = str(kube.kubeconfig)
    kube_client.reset()
    done = ("Completed", "CompletedWithErrors", "Failed")
    with Live(console=console, refresh_per_second=2) as live:
        while True:
            data = gather("default")
            live.update(render(data))
            phases = [(o.get("status") or {}).get("phase") for o in
                      data["Backfill"] + data["Snapshot"]]
            if phases and all(p in (*done, "PartiallyFailed") for p in phases):
                break
            time.sleep(1)
    console.print(_summary(kube, es, os_))
    # The docs' picture of `ferry status` is this very screen (docs/development.md says
    # how to refresh docs/img/ferry-status.svg from it).
    from screenshot_status import record

    shot = DEMO / "ferry-status.svg"
    record(kube.kubeconfig, "default", shot, width=100)
    console.print(f"recorded `ferry status` as {shot}")
    total = sum(counts.values())
    console.print(f"\n{total:,} documents migrated in {time.monotonic() - started:.0f} s "
                  "(stack start-up and data loading included).\n")
    venv_bin = Path(sys.executable).parent
    console.print("Look around (the stack keeps running):\n"
                  f"  export KUBECONFIG={DEMO / 'kubeconfig'} PATH={venv_bin}:{BIN}:$PATH\n"
                  "  kubectl get ferry\n"
                  "  kubectl describe backfill migrate\n"
                  "  ferry status            # or: kubectl ferry status --watch\n"
                  f"  curl -s http://127.0.0.1:{operator.metrics_port}/metrics | grep ferry_\n"
                  "Stop it with: make demo-down")
    backfill = kube.get("backfill", "default", "migrate") or {}
    return 0 if (backfill.get("status") or {}).get("phase") == "Completed" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--docs", type=int, default=100_000)
    args = parser.parse_args()
    if args.command == "down":
        return down()
    try:
        return up(args.docs)
    except BaseException:
        console.print("[red]the demo failed; stopping what it started[/]")
        down(quiet=True)
        raise


if __name__ == "__main__":
    sys.exit(main())
