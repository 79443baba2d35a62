"""Faults around Clusters and status, on the real API server: clusters that accept TCP and
never answer must not delay the others, and two status writers racing on one object
lose no update."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

HANGING = 40
# Longer than it takes the operator to pick up 41 new Clusters on a loaded machine, so
# the healthy one has its turn before the first hanging check gives up (with a shared
# pool of 32 threads it had none: it waited for a hanging check to give up).
HANG_TIMEOUT = 30


class HangingEndpoints:
    """Loopback listeners that accept every connection and never answer a byte."""

    def __init__(self, count: int) -> None:
        self.listeners = []
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            s.listen(64)
            s.setblocking(False)
            self.listeners.append(s)
        self.accepted: dict[int, int] = {self.port(s): 0 for s in self.listeners}
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @staticmethod
    def port(s: socket.socket) -> int:
        return int(s.getsockname()[1])

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.accepted]

    def _accept(self) -> None:
        with selectors.DefaultSelector() as sel:
            for s in self.listeners:
                sel.register(s, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.2):
                    listener: socket.socket = key.fileobj  # type: ignore[assignment]
                    conn, _ = listener.accept()
                    self._held.append(conn)  # held open, never read or written
                    self.accepted[self.port(listener)] += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in [*self._held, *self.listeners]:
            s.close()


@pytest.fixture
def hanging() -> Iterator[HangingEndpoints]:
    endpoints = HangingEndpoints(HANGING)
    yield endpoints
    # Closed before the namespace goes: the checks still waiting end at once.
    endpoints.close()


def cluster(name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name}, "spec": {"endpoint": endpoint, **spec}}


def ready_reason(obj: dict[str, Any]) -> str | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c["reason"] for c in conditions if c["type"] == "Ready"), None)


def clusters(kube: KubeAPIServer, namespace: str) -> dict[str, dict[str, Any]]:
    out = kube.kubectl("get", "clusters.ferry.dev", "-n", namespace, "-o", "json").stdout
    return {o["metadata"]["name"]: o for o in json.loads(out)["items"]}


def poll(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.3)


def test_hanging_clusters_do_not_delay_a_healthy_one(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        namespace: str, hanging: HangingEndpoints) -> None:
    names = [f"hang-{i:02d}" for i in range(HANGING)]
    kube.apply(namespace, *[cluster(name, url, healthCheck={"intervalSeconds": 3600},
                                    connection={"timeoutSeconds": HANG_TIMEOUT,
                                                "maxRetries": 0})
                            for name, url in zip(names, hanging.urls, strict=True)])
    # Every hanging check is in flight at once: more than the operator's shared pool
    # of 32 threads could ever hold.
    poll("a check waiting on every hanging endpoint",
         lambda: all(n >= 1 for n in hanging.accepted.values()), timeout=2 * HANG_TIMEOUT)
    kube.apply(namespace, cluster("healthy", opensearch.url))

    def healthy_ready() -> bool:
        seen = clusters(kube, namespace)
        if (seen.get("healthy", {}).get("status") or {}).get("phase") != "Ready":
            return False
        # One list is one moment: when the healthy one is first seen Ready, no hanging
        # one has given up yet (they have no status at all: their first check waits).
        timed_out = [n for n in names if (seen[n].get("status") or {}).get("phase")]
        assert timed_out == [], f"{timed_out[:3]}... had timed out before healthy was Ready"
        return True

    poll("healthy Ready", healthy_ready, timeout=2 * HANG_TIMEOUT)

    def all_timed_out() -> bool:
        seen = clusters(kube, namespace)
        return all(ready_reason(seen[n]) == "Timeout" for n in names)

    poll("every hanging Cluster ends with reason Timeout", all_timed_out,
         timeout=3 * HANG_TIMEOUT)
    for name, obj in clusters(kube, namespace).items():
        if name != "healthy":
            assert obj["status"]["phase"] == "Unreachable"
            assert "did not answer in time" in obj["status"]["message"]


# -- two status writers racing on one object -------------------------------------------

PHASES = ["Pending", "Ready", "Degraded", "Unreachable", "Invalid", "AuthenticationFailed"]
STEPS = 30

Writer = Callable[..., Any]


def race(namespace: str, name: str, write: Writer) -> list[dict[str, Any]]:
    """Two threads write one Cluster's status through ``write``, each from its own copy:
    one walks ``phase`` through PHASES (STEPS transitions), the other counts
    ``activeShards`` from 1 to STEPS. Returns every status the API server stored, in
    order, from a watch started before the first write."""
    from kubernetes import client, watch

    from ferry.api import GROUP, VERSION, Cluster
    from ferry.clients import kube as kube_client
    from ferry.clients.kube import StatusCopy

    start = kube_client.find_object(Cluster, namespace, name)
    assert start is not None
    stored: list[dict[str, Any]] = []
    done = threading.Event()

    def follow() -> None:
        api = client.CustomObjectsApi(kube_client.api_client())
        w = watch.Watch()
        with contextlib.suppress(Exception):  # the stream ends as the test ends
            follow_stream(api, w)

    def follow_stream(api: Any, w: Any) -> None:
        for event in w.stream(api.list_namespaced_custom_object, GROUP, VERSION, namespace,
                              Cluster.plural, field_selector=f"metadata.name={name}",
                              resource_version=start["metadata"]["resourceVersion"],
                              timeout_seconds=120):
            stored.append(dict(event["object"].get("status") or {}))
            if done.is_set() and event["object"]["metadata"]["resourceVersion"] == final_rv:
                w.stop()

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(step: Callable[[dict[str, Any], int], dict[str, Any]]) -> None:
        current = StatusCopy({}, start["metadata"]["resourceVersion"])
        barrier.wait()
        try:
            for i in range(1, STEPS + 1):
                current = write(Cluster, namespace, name, current, step(current.status, i))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    threads = [threading.Thread(target=writer, args=(step,)) for step in (
        lambda s, i: {**s, "phase": PHASES[i % len(PHASES)]},
        lambda s, i: {**s, "activeShards": i})]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    final = kube_client.find_object(Cluster, namespace, name)
    assert final is not None
    final_rv = final["metadata"]["resourceVersion"]
    done.set()
    # The watch may have passed the last version before ``done`` was set.
    poll("the watch reaching the last write",
         lambda: not follower.is_alive() or (stored and stored[-1] == final["status"]),
         timeout=60)
    return stored


def test_racing_status_writers_lose_nothing(quiet_kube: KubeAPIServer) -> None:
    """The one status writer (resourceVersion, and on a 409 its own changes applied
    again to what is there) against a second writer: every phase transition and every
    count each writer made is stored, in its order, and none is undone by the other."""
    from ferry.clients import kube as kube_client

    namespace, name = f"race-{uuid.uuid4().hex[:8]}", "raced"
    quiet_kube.kubectl("create", "namespace", namespace)
    quiet_kube.apply(namespace, cluster(name, "http://127.0.0.1:1"))
    kube_client.api_client(str(quiet_kube.kubeconfig))
    try:
        stored = race(namespace, name, kube_client.write_status)
    finally:
        kube_client.reset()
    phases = dedupe([s.get("phase") for s in stored])
    counts = dedupe([s.get("activeShards") for s in stored])
    # What was stored is exactly what each writer wrote, in its order (a writer that has
    # not written yet leaves its field unset): nothing skipped (an update lost), nothing
    # undone (a stale value written back).
    assert phases[phases[0] is None:] == [PHASES[i % len(PHASES)] for i in range(1, STEPS + 1)]
    assert counts[counts[0] is None:] == list(range(1, STEPS + 1))
    assert stored[-1]["phase"] == PHASES[STEPS % len(PHASES)]
    assert stored[-1]["activeShards"] == STEPS


def dedupe(values: list[Any]) -> list[Any]:
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]
