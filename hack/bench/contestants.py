"""The copiers under test: Ferry (through its Backfill API only) and ``_reindex`` from
remote run the way an operator of a cluster would run it.

Ferry is timed from the create request of the Backfill until a watch sees it
Completed with ``Verified=True``; the watch also stamps the first sighting of every
phase, which gives the copy phase alone (Running until Verifying) and the fixed costs
around it. The operator's CPU seconds and peak RSS are read from /proc for each run.
The same Backfill can read its documents from a Ferry Snapshot's files instead of the
source (``source.snapshotRef``); :meth:`Ferry.take_snapshot` makes that Snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from bench.ceilings import create_indices, delete_indices, target_count
from bench.dataset import DataSet
from bench.procstat import ProcessMeter
from testbed.kube import KubeAPIServer
from testbed.search import SearchNode

GROUP, VERSION, PLURAL = "ferry.dev", "v1alpha1", "backfills"
TERMINAL = ("Completed", "CompletedWithErrors", "Failed", "Evaluated")
SNAPSHOTS, SNAPSHOT_TERMINAL = "snapshots", ("Completed", "PartiallyFailed", "Failed")


def verified(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Verified" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions", []))


def snapshot_settled(obj: dict[str, Any]) -> bool:
    """Ended, and checked: the operator reads the repository after the snapshot ends."""
    status = obj.get("status") or {}
    return status.get("phase") in SNAPSHOT_TERMINAL and any(
        c.get("type") == "Verified" for c in status.get("conditions", []))


class Ferry:
    """Backfills in one namespace, against one source and one target Cluster."""

    def __init__(self, kube: KubeAPIServer, namespace: str, source: SearchNode,
                 target: SearchNode, meter: ProcessMeter, timeout: float,
                 batch: dict[str, Any] | None = None) -> None:
        self.namespace, self.target, self.meter, self.timeout = (namespace, target, meter,
                                                                 timeout)
        # spec.batch of every Backfill; None: the API's defaults.
        self.batch = batch
        kube.kubectl("create", "namespace", namespace)
        kube.apply(namespace,
                   {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Cluster",
                    "metadata": {"name": "source"},
                    "spec": {"endpoint": source.url, "readOnly": True}},
                   {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Cluster",
                    "metadata": {"name": "target"}, "spec": {"endpoint": target.url}})
        # The Python client, not kubectl: a process spawned per poll would steal CPU
        # from the run being measured, and a watch sees every status write at once.
        self.api = client.CustomObjectsApi(config.new_client_from_config(str(kube.kubeconfig)))

    def run(self, name: str, patterns: list[str], workers: int, docs: int,
            snapshot: str | None = None) -> dict[str, Any]:
        """One Backfill of ``patterns`` into ``<name>-*`` on the target, from the source
        Cluster or, given ``snapshot``, from that Snapshot's files (method copy, no
        sourceRef); its figures. The Backfill and its target indices are deleted
        afterwards."""
        prefix = f"{name}-"
        source: dict[str, Any] = ({"sourceRef": {"name": "source"}} if snapshot is None else
                                  {"method": "copy",
                                   "source": {"snapshotRef": {"name": snapshot}}})
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Backfill",
                "metadata": {"name": name},
                "spec": {**source, "targetRef": {"name": "target"},
                         "indices": patterns, "workers": workers,
                         "targetNaming": {"prefix": prefix},
                         "metadata": {"targetReplicas": 0},
                         **({"batch": self.batch} if self.batch else {})}}
        peak_reset = self.meter.reset_peak()
        cpu = self.meter.cpu_seconds()
        start = time.monotonic()
        created = self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                           PLURAL, body)
        try:
            phases, final = self._watch(PLURAL, name, created["metadata"]["resourceVersion"],
                                        start, lambda o: o["status"].get("phase") in TERMINAL)
        except BaseException:  # a Backfill left running would load the next runs
            self._delete(PLURAL, name)
            delete_indices(self.target, f"{prefix}*")
            raise
        seconds = time.monotonic() - start
        cpu = self.meter.cpu_seconds() - cpu
        peak = self.meter.peak_rss_mb()
        status = final.get("status") or {}
        checked = verified(final)
        self._delete(PLURAL, name)
        copied = target_count(self.target, f"{prefix}*") if status.get("phase") else 0
        delete_indices(self.target, f"{prefix}*")
        if status.get("phase") != "Completed" or not checked or copied != docs:
            conditions = {c.get("type"): c.get("reason") for c in status.get("conditions", [])}
            raise RuntimeError(f"Backfill {name} ended {status.get('phase')} (verified "
                               f"{checked}, {copied} of {docs} documents on the target, "
                               f"conditions {conditions})")
        return {"workers": workers, "seconds": seconds, "docs_per_s": docs / seconds,
                **copy_phase(phases, seconds, docs), "phases": phases,
                "cpu_seconds": cpu, "cpu_s_per_1k_docs": cpu / docs * 1000,
                "peak_rss_mb": peak, "peak_rss_of_this_run": peak_reset}

    def take_snapshot(self, name: str, indices: list[str], location: Path) -> dict[str, Any]:
        """A Ferry Snapshot of the source's ``indices`` into an fs repository at
        ``location`` (in the source node's path.repo, and read by the operator at the
        same path), timed from the create request until it is Completed and Verified."""
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Snapshot",
                "metadata": {"name": name},
                "spec": {"clusterRef": {"name": "source"}, "indices": indices,
                         # The templates too: the Backfill then migrates the same
                         # metadata as a live one.
                         "includeGlobalState": True,
                         "repository": {"name": name, "type": "fs",
                                        "fs": {"location": str(location)}}}}
        start = time.monotonic()
        created = self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                           SNAPSHOTS, body)
        try:
            _, final = self._watch(SNAPSHOTS, name, created["metadata"]["resourceVersion"],
                                   start, snapshot_settled)
        except BaseException:
            self.delete_snapshot(name)
            raise
        seconds = time.monotonic() - start
        status = final.get("status") or {}
        if status.get("phase") != "Completed" or not verified(final):
            self.delete_snapshot(name)
            raise RuntimeError(f"Snapshot {name} ended {status.get('phase')} (verified "
                               f"{verified(final)}): {status.get('message')}")
        return {"seconds": seconds, "snapshot": status.get("snapshotName") or name,
                "documents": status.get("documents")}

    def delete_snapshot(self, name: str) -> None:
        """The Snapshot resource only (its deletion policy, Retain, keeps the files)."""
        self._delete(SNAPSHOTS, name)

    def _watch(self, plural: str, name: str, version: str, start: float,
               done: Callable[[dict[str, Any]], bool]
               ) -> tuple[dict[str, float], dict[str, Any]]:
        """Seconds from ``start`` at which each phase was first seen; the last object,
        the first one ``done`` accepts."""
        phases: dict[str, float] = {}
        obj: dict[str, Any] = {}
        stream = watch.Watch()
        while time.monotonic() - start < self.timeout:
            for event in stream.stream(self.api.list_namespaced_custom_object, GROUP,
                                       VERSION, self.namespace, plural,
                                       field_selector=f"metadata.name={name}",
                                       resource_version=version, timeout_seconds=30):
                if event["type"] == "ERROR":  # the version expired: read the object again
                    obj = self.api.get_namespaced_custom_object(GROUP, VERSION,
                                                                self.namespace, plural, name)
                else:
                    obj = event["object"]
                version = obj["metadata"]["resourceVersion"]
                status = obj.get("status") or {}
                phases.setdefault(status.get("phase") or "Pending",
                                  time.monotonic() - start)
                # Progress is written every few seconds, so this is late by up to that.
                if (status.get("progress") or {}).get("docsMigrated"):
                    phases.setdefault("firstProgress", time.monotonic() - start)
                if done({**obj, "status": status}):
                    stream.stop()
                    return phases, obj
        raise TimeoutError(f"{plural} {name} not finished after {self.timeout:.0f} s; last "
                           f"phase {(obj.get('status') or {}).get('phase')}")

    def _delete(self, plural: str, name: str) -> None:
        """Delete the resource and wait until its finalizer is done (a Backfill's removes
        the coordination index), so the next run starts on a target holding nothing of
        this one."""
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural,
                                                      name)
            except client.ApiException as exc:
                if exc.status == 404:
                    return
                raise
            time.sleep(0.5)
        raise TimeoutError(f"{plural} {name} still there 120 s after its deletion")


def copy_phase(phases: dict[str, float], seconds: float, docs: int) -> dict[str, Any]:
    """The copy phase (first seen Running until first seen Verifying, or the end if the
    watch never saw Verifying) and the fixed costs before it (planning: from the create
    request until MigratingMetadata; metadata: until Running) and after it."""
    running = phases.get("Running")
    if running is None:
        return dict.fromkeys(("copy_seconds", "copy_docs_per_s", "before_copy_seconds",
                              "after_copy_seconds", "planning_seconds", "metadata_seconds"))
    done = phases.get("Verifying", phases.get("Completed", seconds))
    metadata = phases.get("MigratingMetadata", running)
    return {"copy_seconds": done - running, "copy_docs_per_s": docs / max(done - running, 1e-9),
            "before_copy_seconds": running, "after_copy_seconds": seconds - done,
            "planning_seconds": metadata, "metadata_seconds": running - metadata}


def reindex(source: SearchNode, target: SearchNode, data: DataSet, size: int,
            prefix: str = "reindex-") -> dict[str, Any]:
    """``_reindex`` from remote, one task per index, all in parallel, each scrolling the
    source ``size`` documents at a time. Timed from creating the target indices to the
    refresh after the last task, as a person would run it."""
    targets = {index: prefix + index for index in data.indices}
    start = time.monotonic()
    create_indices(target, data, targets)
    tasks = [target.request("POST", "/_reindex?wait_for_completion=false", {
        "source": {"remote": {"host": source.url}, "index": index, "size": size},
        "dest": {"index": targets[index]}})["task"]  # type: ignore[index]
        for index in data.indices]
    pending = set(tasks)
    while pending:
        time.sleep(0.2)
        for task in list(pending):
            got: Any = target.request("GET", f"/_tasks/{task}")
            if got.get("completed"):
                pending.discard(task)
                failures = (got.get("response") or {}).get("failures") or got.get("error")
                if failures:
                    raise RuntimeError(f"_reindex task {task} failed: {str(failures)[:300]}")
    target.request("POST", f"/{prefix}*/_refresh")
    seconds = time.monotonic() - start
    copied = target_count(target, f"{prefix}*")
    delete_indices(target, f"{prefix}*")
    if copied != data.docs:
        raise RuntimeError(f"_reindex copied {copied} of {data.docs} documents")
    return {"size": size, "tasks": len(tasks), "seconds": seconds,
            "docs_per_s": data.docs / seconds}
