"""Backfill throughput: Ferry (workers 1, 2, 4) vs the target's _reindex from remote vs
the bulk ceiling, on the same generated data set, machine and run.

    python -m bench.backfill [--docs 100000] [--json build/bench/backfill.json]

Prints a table and writes JSON. Ferry is measured end to end: from applying the
Backfill until it is Completed (planning, index creation and verification included).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client, config

from testbed import datagen
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.paths import BUILD
from testbed.search import SearchNode

INDICES = ["web-logs", "orders", "users"]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._stop_flag = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.2)

    def stop(self) -> float:
        self._stop_flag.set()
        self.join()
        return self.peak


def source_bytes(node: SearchNode) -> int:
    stats = node.request("GET", "/" + ",".join(INDICES) + "/_stats/store")
    return int(stats["_all"]["primaries"]["store"]["size_in_bytes"])  # type: ignore[index]


def create_like(source: SearchNode, target: SearchNode, index: str, dest: str) -> None:
    spec = {s.name: s for s in (datagen.logs_index(), datagen.orders_index(),
                                datagen.users_index())}[index]
    target.request("PUT", f"/{dest}", spec.body)


def run_ferry(kube: KubeAPIServer, ns: str, workers: int, es: SearchNode, os_: SearchNode
              ) -> float:
    kube.kubectl("create", "namespace", ns)
    kube.apply(ns,
               {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                "metadata": {"name": "source"}, "spec": {"endpoint": es.url, "readOnly": True}},
               {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                "metadata": {"name": "target"}, "spec": {"endpoint": os_.url}})
    start = time.monotonic()
    kube.apply(ns, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill",
                    "metadata": {"name": "bench"},
                    "spec": {"sourceRef": {"name": "source"}, "targetRef": {"name": "target"},
                             "indices": INDICES, "workers": workers,
                             "targetNaming": {"prefix": f"{ns}-"}}})
    # Polled with the Python client, not kubectl: a process spawned several times a
    # second would steal CPU from the run being measured.
    api = client.CustomObjectsApi(config.new_client_from_config(str(kube.kubeconfig)))
    while True:
        obj = api.get_namespaced_custom_object("ferry.dev", "v1alpha1", ns, "backfills",
                                               "bench")
        if (obj.get("status") or {}).get("phase") in ("Completed", "Failed",
                                                       "CompletedWithErrors"):
            break
        if time.monotonic() - start > 1800:
            raise TimeoutError("benchmark Backfill did not finish in 30 minutes")
        time.sleep(0.25)
    elapsed = time.monotonic() - start
    if obj["status"]["phase"] != "Completed":
        raise RuntimeError(f"benchmark Backfill ended {obj['status']}")
    return elapsed


def run_reindex(es: SearchNode, os_: SearchNode, prefix: str) -> float:
    for index in INDICES:
        create_like(es, os_, index, prefix + index)
    start = time.monotonic()
    for index in INDICES:
        os_.request("POST", "/_reindex?wait_for_completion=true&refresh=true", {
            "source": {"remote": {"host": es.url}, "index": index, "size": 1000},
            "dest": {"index": prefix + index}})
    return time.monotonic() - start


def prebuilt_bulks(es: SearchNode, prefix: str) -> list[bytes]:
    bodies: list[bytes] = []
    for index in INDICES:
        page = es.request("POST", f"/{index}/_search?scroll=2m", {"size": 1000,
                                                                  "sort": ["_doc"]})
        while page["hits"]["hits"]:  # type: ignore[index]
            lines = []
            for hit in page["hits"]["hits"]:  # type: ignore[index]
                action: dict[str, Any] = {"_index": prefix + index, "_id": hit["_id"]}
                if hit.get("_routing"):
                    action["routing"] = hit["_routing"]
                lines.append(json.dumps({"index": action}) + "\n" + json.dumps(hit["_source"])
                             + "\n")
            bodies.append("".join(lines).encode())
            page = es.request("POST", "/_search/scroll", {"scroll": "2m",
                                                          "scroll_id": page["_scroll_id"]})  # type: ignore[index]
    return bodies


def run_bulk_ceiling(es: SearchNode, os_: SearchNode, prefix: str) -> float:
    for index in INDICES:
        create_like(es, os_, index, prefix + index)
    bodies = prebuilt_bulks(es, prefix)
    start = time.monotonic()
    for body in bodies:
        req = urllib.request.Request(f"{os_.url}/_bulk", data=body, method="POST",
                                     headers={"Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(req, timeout=300) as r:
            r.read()
    os_.request("POST", f"/{prefix}*/_refresh")
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--json", default=str(BUILD / "bench" / "backfill.json"))
    args = parser.parse_args()

    parts: list[Any] = []
    try:
        kube = KubeAPIServer().start()
        parts.append(kube)
        es = SearchNode("elasticsearch", heap="1g").start()
        parts.append(es)
        os_ = SearchNode("opensearch", heap="1g").start()
        parts.append(os_)
        print(f"loading {args.docs} documents into Elasticsearch {es.number} ...", flush=True)
        counts = datagen.standard_dataset(es, args.docs)
        docs = sum(counts.values())
        mb = source_bytes(es) / 1e6
        kube.kubectl("apply", "--server-side", "-f", str(Path(__file__).parents[2] / "crds"))
        kube.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        operator = OperatorProcess(kube.kubeconfig).start()
        parts.append(operator)
        assert operator.proc and operator.proc.proc
        sampler = RssSampler(operator.proc.proc.pid)
        sampler.start()
        rows: list[dict[str, Any]] = []
        for n in [int(w) for w in args.workers.split(",")]:
            print(f"ferry, {n} worker(s) ...", flush=True)
            secs = run_ferry(kube, f"bench-w{n}", n, es, os_)
            rows.append({"method": f"ferry workers={n}", "seconds": secs})
        peak = sampler.stop()
        steady = rss_mb(operator.proc.proc.pid)
        print("_reindex from remote ...", flush=True)
        rows.append({"method": "_reindex from remote", "seconds": run_reindex(es, os_, "rr-")})
        print("bulk ceiling ...", flush=True)
        rows.append({"method": "bulk ceiling (1 loop)",
                     "seconds": run_bulk_ceiling(es, os_, "bulk-")})
    finally:
        for part in reversed(parts):
            part.stop()

    for row in rows:
        row["docs_per_s"] = docs / row["seconds"]
        row["mb_per_s"] = mb / row["seconds"]
    by = {r["method"]: r for r in rows}
    ferry2 = by.get("ferry workers=2", rows[0])["docs_per_s"]
    ratios = {"ferry2_vs_reindex": ferry2 / by["_reindex from remote"]["docs_per_s"],
              "ferry2_vs_bulk_ceiling": ferry2 / by["bulk ceiling (1 loop)"]["docs_per_s"]}
    print(f"\n{docs} documents, {mb:.1f} MB (source primaries), "
          f"Elasticsearch {es.number} -> OpenSearch {os_.number}, 2-core machine\n")
    print(f"{'method':<24}{'seconds':>10}{'docs/s':>12}{'MB/s':>10}")
    for r in rows:
        print(f"{r['method']:<24}{r['seconds']:>10.1f}{r['docs_per_s']:>12.0f}"
              f"{r['mb_per_s']:>10.2f}")
    print(f"\nferry(2) / _reindex from remote: {ratios['ferry2_vs_reindex']:.2f}x "
          f"(target >= 1.2x)")
    print(f"ferry(2) / bulk ceiling:        {ratios['ferry2_vs_bulk_ceiling']:.2f}x "
          f"(target >= 0.7x)")
    print(f"operator RSS: peak {peak:.0f} MB during the Ferry runs, {steady:.0f} MB after "
          "(target peak <= 300 MB)")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"docs": docs, "source_mb": mb, "rows": rows, "ratios": ratios,
                               "operator_rss_mb": {"peak": peak, "after": steady}}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
