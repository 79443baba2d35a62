"""`ferry status` rendered from statuses in the shapes the operator writes (each one
validated and dumped through its kind's status model, as `write_status` does): the
overview at 80 and 160 columns, one resource in full, `-o json|yaml`, the Failed
verdict behind the exit code, and engine messages that keep their brackets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from rich.console import Console, RenderableType

from ferry.api import Backfill, Cluster, KindInfo, Snapshot
from ferry.api.common import dump_status
from ferry.statusview import present, render
from ferry.statusview.detail import detail
from ferry.statusview.fmt import duration, size

T0 = "2024-05-01T10:00:00Z"
PARSE_ERROR = ("failed to parse field [price] of type [long] in document with id "
               "'o-17'. Preview of field's value: 'twelve'")
REFUSED = ("ConnectionRefused: no answer from http://127.0.0.1:59999 [connect: "
           "Connection refused]; retrying with backoff")


def cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": T0, "observedGeneration": 1}


def obj(kind: KindInfo, name: str, spec: dict[str, Any], status: dict[str, Any],
        namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": kind.kind,
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": spec, "status": dump_status(kind.status, status)}


def scene(namespace: str = "default") -> dict[str, list[dict[str, Any]]]:
    clusters = [
        obj(Cluster, "source", {"endpoint": "http://127.0.0.1:39201"}, {
            "phase": "Ready", "message": "cluster health is green", "observedGeneration": 1,
            "engine": "elasticsearch", "version": "7.10.2", "health": "green", "nodes": 1,
            "dataNodes": 1, "activeShards": 3, "unassignedShards": 0,
            "indices": {"count": 3, "documents": 1_234_567, "storeBytes": 734_003_200},
            "lastCheckedTime": T0, "conditions": [cond("Ready", "True", "Green")]},
            namespace),
        obj(Cluster, "gone", {"endpoint": "http://127.0.0.1:59999"}, {
            "phase": "Unreachable", "message": REFUSED, "observedGeneration": 1,
            "conditions": [cond("Ready", "False", "ConnectionRefused", REFUSED)]},
            namespace),
    ]
    snapshots = [obj(Snapshot, "before-migration", {"clusterRef": {"name": "source"}}, {
        "phase": "InProgress", "snapshotName": "before-migration-1", "startTime": T0,
        "progress": {"percent": 41.5, "shardsTotal": 12, "shardsDone": 5,
                     "bytesTotal": 734_003_200, "bytesDone": 304_612_000,
                     "bytesPerSecond": 52_428_800, "etaSeconds": 3725},
        "indices": [{"name": "orders", "state": "STARTED", "shardsTotal": 6,
                     "shardsDone": 2, "shardsFailed": 0, "documents": 800_000}],
        "conditions": [cond("Progressing", "True", "InProgress")]}, namespace)]
    failures = ([{"time": T0, "index": "orders", "id": f"o-{i}", "reason": PARSE_ERROR}
                 for i in range(7)]
                + [{"time": T0, "index": "users", "id": "[u-1]",
                    "reason": "mapper [age] cannot be changed from type [long] to [text]"}])
    backfills = [
        obj(Backfill, "migrate", {"sourceRef": {"name": "source"},
                                  "targetRef": {"name": "target"}, "workers": 4}, {
            "phase": "Running", "message": "copying 3 indices", "workers": 4,
            "desiredWorkers": 4, "startTime": T0,
            "progress": {"docsTotal": 1_234_567, "docsMigrated": 1_000_123, "docsFailed": 8,
                         "percent": 81.0, "docsPerSecond": 12_345.6, "etaSeconds": 3725},
            "workItems": {"total": 12, "completed": 9, "inProgress": 3, "waiting": 0},
            "indices": [{"name": "orders", "target": "orders-copy", "docsTotal": 1_000_000,
                         "docsMigrated": 900_000},
                        {"name": "users", "target": "users-copy", "docsTotal": 234_567,
                         "docsMigrated": 100_123, "targetCount": 100_000, "verified": False}],
            "failures": failures,
            "conditions": [cond("Progressing", "True", "Running", "copying")]}, namespace),
        obj(Backfill, "broken", {"sourceRef": {"name": "source"},
                                 "targetRef": {"name": "frozen"}}, {
            "phase": "Failed", "completionTime": T0,
            "message": "target Cluster frozen is readOnly: Ferry never writes to it",
            "conditions": [cond("Failed", "True", "TargetReadOnly", "readOnly [frozen]")]},
            namespace),
    ]
    return {"Cluster": clusters, "Snapshot": snapshots, "Backfill": backfills}


def text_of(view: RenderableType, width: int) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(view)
    return console.export_text()


def flat(text: str) -> str:
    """The text with line breaks and runs of blanks folded: wrapped words rejoined."""
    return " ".join(text.split())


def row(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(name + " "))


@pytest.mark.parametrize("width", [80, 160])
def test_overview_cuts_nothing(width: int) -> None:
    text = text_of(render(scene()), width)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    source = row(text, "source")
    assert "elasticsearch 7.10.2" in source and "Ready" in source and "1,234,567" in source
    assert "Unreachable" in row(text, "gone")
    snap = row(text, "before-migration")
    assert "InProgress" in snap and "41.5%" in snap and "1h02m" in snap
    migrate = row(text, "migrate")
    # The Source → Target cell, the phase and the document counts each whole, on one line.
    assert "source → target" in migrate and "Running" in migrate
    assert "1,000,123/1,234,567" in migrate and "81.0%" in migrate and "1h02m" in migrate
    assert "Failed" in row(text, "broken") and "source → frozen" in row(text, "broken")
    for message in (REFUSED, "copying 3 indices",
                    "target Cluster frozen is readOnly: Ferry never writes to it"):
        assert message in flat(text)  # whole, wrapped under its row if need be
    assert "…" not in text


def test_engine_messages_keep_their_brackets() -> None:
    for width in (80, 160):
        text = flat(text_of(render(scene()), width))
        # Under the Backfill: the commonest failure reason, brackets and all.
        assert f"latest failures (7): {PARSE_ERROR} (and 1 more reason)" in text
        assert "[connect: Connection refused]" in text
    full = flat(text_of(detail(Backfill, scene()["Backfill"][0]), 80))
    assert "mapper [age] cannot be changed from type [long] to [text]" in full
    assert "at users/[u-1]" in full
    assert "readOnly [frozen]" in flat(text_of(detail(Backfill, scene()["Backfill"][1]), 80))


def test_wide_terminal_shows_more_columns() -> None:
    narrow, wide = text_of(render(scene()), 80), text_of(render(scene()), 160)
    for header in ("WORKERS", "ENDPOINT", "NODES", "SNAPSHOT"):
        assert header not in narrow and header in wide
    backfills = [line for line in narrow.splitlines() if line.startswith("NAME ")][-1]
    assert "RATE" not in backfills and "FAILED" in backfills
    assert "12,346/s" in row(wide, "migrate") and "4/4" in row(wide, "migrate")
    assert "http://127.0.0.1:39201" in row(wide, "source")
    assert "█" in row(wide, "migrate")  # the bar


def test_a_long_name_wraps_rather_than_loses_characters() -> None:
    data = scene()
    name = "a-backfill-with-a-name-long-enough-to-push-every-optional-column-out"
    data["Backfill"][0]["metadata"]["name"] = name
    text = text_of(render(data), 80)
    # The optional columns make way; what is left wraps, whole.
    assert name in text and "Running 81.0%" in flat(text)


def test_all_namespaces_names_carry_their_namespace() -> None:
    text = text_of(render(scene("team-a"), all_namespaces=True), 80)
    assert row(text, "team-a/migrate")
    assert "No Ferry resources" in text_of(render({}, namespace="empty"), 80)
    assert "namespace empty" in text_of(render({}, namespace="empty"), 80)


def test_one_backfill_in_full() -> None:
    text = text_of(detail(Backfill, scene()["Backfill"][0]), 80)
    orders, users = row(text, "orders"), row(text, "users")
    assert "orders-copy" in orders and "900,000/1,000,000" in orders
    assert "100,123/234,567" in users and "100,000" in users and "NO" in users
    # Failures grouped by reason, the commonest first, with counts and where.
    groups = re.findall(r"^\s+(\d+)\s+(.+?)\s*$", text, re.MULTILINE)
    counted = [(int(n), reason) for n, reason in groups]
    assert counted[0][0] == 7 and counted[0][1].startswith("failed to parse field [price]")
    assert counted[1] == (1, "mapper [age] cannot be changed from type [long] to [text]")
    assert "at orders/o-0, orders/o-1, orders/o-2, orders/o-3, orders/o-4 (+2 more)" in text
    assert "9/12 done, 3 leased, 0 waiting" in text
    assert "12,346/s, ETA 1h02m" in text


def test_one_cluster_and_one_snapshot_in_full() -> None:
    cluster = text_of(detail(Cluster, scene()["Cluster"][0]), 80)
    assert "elasticsearch 7.10.2" in cluster and "3 indices, 1,234,567 docs, 700MiB" in cluster
    assert "Ready  True    Green" in cluster
    snap = text_of(detail(Snapshot, scene()["Snapshot"][0]), 80)
    assert "5/12 done, 0 failed" in snap and "50MiB/s" in snap
    assert "800,000" in row(snap, "orders") and "2/6" in row(snap, "orders")


def test_json_and_yaml_for_scripts() -> None:
    out, failed = present("json", scene())
    assert isinstance(out, str) and failed
    items = {(i["kind"], i["name"]): i for i in json.loads(out)["items"]}
    assert set(items) == {("Cluster", "source"), ("Cluster", "gone"),
                          ("Snapshot", "before-migration"), ("Backfill", "migrate"),
                          ("Backfill", "broken")}
    migrate = items[("Backfill", "migrate")]
    assert migrate["phase"] == "Running" and migrate["progress"]["docsMigrated"] == 1_000_123
    assert (migrate["source"], migrate["target"]) == ("source", "target")
    assert migrate["conditions"][0]["type"] == "Progressing"
    assert items[("Backfill", "broken")]["failed"] is True
    assert items[("Cluster", "source")]["failed"] is False
    out, _ = present("yaml", scene())
    assert yaml.safe_load(str(out))["items"][0]["name"] == "source"
    one, failed = present("json", one=(Backfill, scene()["Backfill"][0]))
    doc = json.loads(str(one))
    assert not failed and doc["failureReasons"][0] == {
        "reason": PARSE_ERROR, "count": 7, "where": [f"orders/o-{i}" for i in range(7)]}
    assert [i["name"] for i in doc["indices"]] == ["orders", "users"]


def test_failed_verdict_behind_the_exit_code() -> None:
    data = scene()
    assert present(None, data)[1] is True
    data["Backfill"].pop()  # without the Failed Backfill nothing shown is Failed
    assert present(None, data)[1] is False
    data["Snapshot"][0]["status"]["conditions"] = [cond("Failed", "True", "SnapshotFailed")]
    assert present(None, data)[1] is True


def test_human_figures() -> None:
    assert [duration(s) for s in (0, 45, 187, 3725, 3 * 86400 + 7200)] == \
        ["0s", "45s", "3m07s", "1h02m", "3d02h"]
    assert duration(None) == "-"
    assert [size(b) for b in (512, 9816, 734_003_200)] == ["512B", "9.59KiB", "700MiB"]
