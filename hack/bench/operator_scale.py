"""Operator scale and tracking cost, on the test bed.

    python -m bench.operator_scale [--clusters 1000] [--json build/bench/operator.json]

1. N Clusters (all pointing at one OpenSearch node) created at once: seconds until all
   are Ready; operator RSS at peak and at steady state; API requests per minute at
   steady state; status writes per resource per health interval.
2. One running Snapshot (throttled so it runs for minutes): requests per minute the
   operator sends to the search node to track it.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

from bench.backfill import RssSampler, rss_mb
from testbed import datagen
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.paths import BUILD
from testbed.proxy import ReverseProxy
from testbed.search import SearchNode

INTERVAL = 60


def apiserver_requests(kube: KubeAPIServer) -> dict[tuple[str, str, str], float]:
    """apiserver_request_total summed by (verb, resource, subresource)."""
    text = kube.kubectl("get", "--raw", "/metrics").stdout
    totals: dict[tuple[str, str, str], float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        key = (labels.get("verb", ""), labels.get("resource", ""),
               labels.get("subresource", ""))
        totals[key] = totals.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def diff(after: dict[Any, float], before: dict[Any, float]) -> dict[Any, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


def scale(kube: KubeAPIServer, node: SearchNode, n: int, operator: OperatorProcess
          ) -> dict[str, Any]:
    api = client.CustomObjectsApi(config.new_client_from_config(str(kube.kubeconfig)))
    kube.kubectl("create", "namespace", "scale")
    assert operator.proc and operator.proc.proc
    sampler = RssSampler(operator.proc.proc.pid)
    sampler.start()
    items = [{"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
              "metadata": {"name": f"c{i:04d}"},
              "spec": {"endpoint": node.url, "healthCheck": {"intervalSeconds": INTERVAL}}}
             for i in range(n)]
    start = time.monotonic()
    for chunk in range(0, n, 250):
        kube.apply("scale", *items[chunk:chunk + 250])
    ready = 0
    while time.monotonic() - start < 600:
        listed = api.list_namespaced_custom_object("ferry.dev", "v1alpha1", "scale",
                                                   "clusters")["items"]
        ready = sum(1 for o in listed if (o.get("status") or {}).get("phase") == "Ready")
        if ready == n:
            break
        time.sleep(1)
    all_ready = time.monotonic() - start
    # Steady state: let the first round of jittered checks settle, then measure over
    # two whole health intervals without any request of our own in between.
    time.sleep(30)
    before = apiserver_requests(kube)
    window = 2 * INTERVAL
    time.sleep(window)
    after = apiserver_requests(kube)
    peak = sampler.stop()
    steady = rss_mb(operator.proc.proc.pid)
    delta = diff(after, before)
    ours = {k: v for k, v in delta.items() if k[1] in ("clusters", "secrets", "configmaps",
                                                       "events", "namespaces",
                                                       "customresourcedefinitions")}
    status_writes = delta.get(("PATCH", "clusters", "status"), 0.0)
    # Sanity: the counters move at all (the API server's own housekeeping shows here),
    # so a zero above is a measurement, not a parsing failure.
    everything = sum(delta.values())
    creates = sum(v for k, v in after.items() if k[:2] == ("POST", "clusters"))
    return {"clusters": n, "ready": ready, "seconds_until_all_ready": all_ready,
            "rss_peak_mb": peak, "rss_steady_mb": steady,
            "api_requests_per_minute": sum(ours.values()) / (window / 60),
            "api_requests_by_kind": {"/".join(k): v for k, v in ours.items()},
            "all_apiserver_requests_in_window": everything,
            "cluster_creates_counted": creates,
            "status_writes_per_resource_per_interval":
                status_writes / n / (window / INTERVAL)}


def snapshot_cost(kube: KubeAPIServer, es: SearchNode) -> dict[str, Any]:
    datagen.load(es, datagen.logs_index("snap-logs", shards=1), datagen.log_docs(60_000))
    seen: list[float] = []
    proxy = ReverseProxy(es.url, gate=lambda r: seen.append(time.monotonic()) or None).start()
    try:
        kube.kubectl("create", "namespace", "snap")
        kube.apply("snap",
                   {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                    "metadata": {"name": "es"},
                    "spec": {"endpoint": proxy.url, "healthCheck": {"intervalSeconds": 3600}}},
                   {"apiVersion": "ferry.dev/v1alpha1", "kind": "Snapshot",
                    "metadata": {"name": "slow"},
                    "spec": {"clusterRef": {"name": "es"}, "indices": ["snap-logs"],
                             "repository": {"name": "bench", "type": "fs",
                                            "fs": {"location": str(es.repo / "bench")},
                                            "maxSnapshotBytesPerSec": "20kb"}}})
        kube.wait_for("snapshot", "snap", "slow",
                      lambda o: o["status"]["phase"] == "InProgress", timeout=120)
        time.sleep(60)  # the poll has backed off to its steady period
        start = time.monotonic()
        time.sleep(120)
        count = sum(1 for t in seen if t >= start)
        obj = kube.get("snapshot", "snap", "slow") or {}
        return {"requests_per_minute": count / 2,
                "phase_during_measurement": (obj.get("status") or {}).get("phase")}
    finally:
        proxy.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--json", default=str(BUILD / "bench" / "operator.json"))
    args = parser.parse_args()
    parts: list[Any] = []
    try:
        kube = KubeAPIServer().start()
        parts.append(kube)
        node = SearchNode("opensearch").start()
        parts.append(node)
        es = SearchNode("elasticsearch").start()
        parts.append(es)
        kube.kubectl("apply", "--server-side", "-f", str(Path(__file__).parents[2] / "crds"))
        kube.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        operator = OperatorProcess(kube.kubeconfig).start()
        parts.append(operator)
        print(f"creating {args.clusters} Clusters ...", flush=True)
        result = {"scale": scale(kube, node, args.clusters, operator)}
        print("tracking one slow Snapshot ...", flush=True)
        result["snapshot"] = snapshot_cost(kube, es)
    finally:
        for part in reversed(parts):
            part.stop()
    s = result["scale"]
    print(f"\n{s['clusters']} Clusters on one OpenSearch node, health interval {INTERVAL}s, "
          "2-core machine")
    print(f"  all Ready after          {s['seconds_until_all_ready']:.1f} s   (target <= 120)")
    print(f"  operator RSS             peak {s['rss_peak_mb']:.0f} MB, steady "
          f"{s['rss_steady_mb']:.0f} MB   (target steady <= 200)")
    print(f"  API requests/minute      {s['api_requests_per_minute']:.0f} at steady state")
    print(f"  status writes            {s['status_writes_per_resource_per_interval']:.2f} "
          "per resource per interval   (target <= 1)")
    print(f"one running Snapshot: {result['snapshot']['requests_per_minute']:.1f} requests "
          "per minute to the search node")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
