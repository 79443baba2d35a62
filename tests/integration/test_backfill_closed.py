"""A closed source index (Elasticsearch 7.10 → OpenSearch 2.19): by default the Backfill
fails with reason IndexClosed before anything is written; Evaluate lists it; with
spec.closedIndices Skip the open indices are copied and the closed one is reported
skipped. The Evaluated Backfill switched to Skip and Create also proves that a plan
field changed before the copy started is taken, and refused once it has."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from test_backfill import backfill, clusters, condition, count, phase_in

from testbed import datagen
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

OPEN_DOCS = 300
END = ("Completed", "CompletedWithErrors", "Failed")


def _items(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """status.metadata's Index items by source name."""
    return {i["name"]: i for i in obj["status"]["metadata"]["items"] if i["kind"] == "Index"}


def _target_indices(node: SearchNode, pattern: str) -> list[str]:
    rows = node.request("GET", f"/_cat/indices/{pattern}?format=json&h=index"
                        "&expand_wildcards=all")
    assert isinstance(rows, list)
    return sorted(r["index"] for r in rows)


def test_closed_source_index_fails_by_default_is_evaluated_and_skipped_on_request(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str) -> None:
    prefix = f"closed-{uuid.uuid4().hex[:6]}-"
    opened, shut = f"{prefix}open", f"{prefix}shut"
    datagen.load(elasticsearch, datagen.logs_index(opened, shards=1),
                 datagen.log_docs(OPEN_DOCS))
    datagen.load(elasticsearch, datagen.logs_index(shut, shards=1), datagen.log_docs(40))
    elasticsearch.request("POST", f"/{shut}/_close")
    listed = elasticsearch.request("GET", f"/_cat/indices/{prefix}*?format=json&h=index,status"
                                   "&expand_wildcards=all")
    assert {r["index"]: r["status"] for r in listed} == {opened: "open", shut: "close"}  # type: ignore[union-attr]

    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill("refused", indices=[f"{prefix}*"]),
               backfill("evaluated", indices=[f"{prefix}*"], metadata={"mode": "Evaluate"}))

    # Default (closedIndices Fail): Failed before anything is written, naming the index
    # and the option that would skip it.
    refused = kube.wait_for("backfill", namespace, "refused", phase_in(*END), timeout=60)
    assert refused["status"]["phase"] == "Failed", refused["status"]
    failed = condition(refused, "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "IndexClosed")
    assert shut in failed["message"] and opened not in failed["message"]
    assert "spec.closedIndices: Skip" in failed["message"]
    assert "coordinationIndex" not in refused["status"]
    assert "IndexClosed" in {e["reason"] for e in kube.events(namespace, "refused")}

    # Evaluate lists it, and writes nothing either.
    evaluated = kube.wait_for("backfill", namespace, "evaluated", phase_in("Evaluated", *END),
                              timeout=60)
    assert evaluated["status"]["phase"] == "Evaluated", evaluated["status"]
    items = _items(evaluated)
    assert items[shut]["action"] == "Incompatible"
    assert items[shut]["reason"].startswith("IndexClosed: ")
    assert items[opened]["action"] == "WouldCreate"
    assert _target_indices(opensearch, f"{prefix}*") == []
    # No coordination index (`.ferry-backfill-<uid>`) either.
    coordination = " ".join(_target_indices(opensearch, ".ferry-backfill-*"))
    for obj in (refused, evaluated):
        assert obj["metadata"]["uid"] not in coordination

    # Before the copy started (Evaluated) a plan field may change and is followed:
    # closedIndices Skip, mode Create.
    kube.kubectl("patch", "backfill", "evaluated", "-n", namespace, "--type=merge", "-p",
                 json.dumps({"spec": {"closedIndices": "Skip",
                                      "metadata": {"mode": "Create"}}}))
    done = kube.wait_for("backfill", namespace, "evaluated", phase_in(*END), timeout=90)
    status = done["status"]
    assert status["phase"] == "Completed", status
    assert condition(done, "Verified")["status"] == "True"
    assert [r["name"] for r in status["indices"]] == [opened]
    assert status["progress"]["docsMigrated"] == OPEN_DOCS
    assert count(opensearch, opened) == OPEN_DOCS
    assert _target_indices(opensearch, f"{prefix}*") == [opened]
    items = _items(done)
    assert items[shut]["action"] == "Skipped"
    assert items[shut]["reason"].startswith("IndexClosed: ")
    assert items[opened]["action"] == "Created"

    # Once started, the API server refuses a change of the plan, naming the field.
    result = kube.kubectl("patch", "backfill", "evaluated", "-n", namespace, "--type=merge",
                          "-p", json.dumps({"spec": {"indices": [opened]}}), check=False)
    assert result.returncode != 0
    assert "spec.indices: Forbidden: spec.indices cannot change once the Backfill has " \
        "started" in result.stderr, result.stderr
    for node, names in ((elasticsearch, f"{opened},{shut}"), (opensearch, opened)):
        node.request("DELETE", f"/{names}")
