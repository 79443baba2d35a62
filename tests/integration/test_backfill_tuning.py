"""Target tuning during a copy: the indices a Backfill created carry refresh -1 and no
replicas while documents load, and get their own values back — at the end, on
deletion, on pause (also after an operator crash) and on failure; tuning off changes
nothing; an index that existed before the Backfill is never tuned.

Each source index has distinctive settings (refresh 7s, 2 replicas) that its target
copy inherits, so a restore to the engine's defaults (1s/unset, 1 replica) would fail
these tests. Every copy is throttled so that it is observably running while the
target is read; an observation counts only if the Backfill was still copying after it.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from test_backfill import backfill, clusters, condition, count, phase_in

from testbed import datagen
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.proxy import Refusal, Request, ReverseProxy
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

DOCS = 2000
ORIGINAL = {"index.refresh_interval": "7s", "index.number_of_replicas": "2"}
LOAD = {"index.refresh_interval": "-1", "index.number_of_replicas": "0"}
KEYS = (*ORIGINAL, "index.translog.durability")
# Copies that run to the end, and slower ones that a test stops (pause, deletion).
# minDocuments 0: these 2,000-document indices are below the default threshold.
TUNED = {"minDocuments": 0}
# QUICK's copy takes 10 s, and its settings come back about 2 s before the end: a
# test reads them between the first status with progress (about 5 s) and that.
QUICK = {"batch": {"maxDocs": 100}, "throttle": {"maxDocsPerSecond": 200},
         "targetTuning": TUNED}
SLOW = {"batch": {"maxDocs": 100}, "throttle": {"maxDocsPerSecond": 80},
        "targetTuning": TUNED}


@pytest.fixture(scope="module")
def sources(elasticsearch: SearchNode) -> list[str]:
    """Two source indices, only ever read: each test copies them to its own targets."""
    names = [f"tune-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        body = {**datagen.users_index(name).body, "settings": {
            "number_of_shards": 1, "number_of_replicas": 2, "refresh_interval": "7s"}}
        datagen.load(elasticsearch, datagen.IndexSpec(name, 1, body),
                     datagen.user_docs(DOCS))
    return names


def settings(node: SearchNode, index: str) -> dict[str, str]:
    """The tuned settings that are set on the index (defaults left out)."""
    got = node.request("GET", f"/{index}/_settings?flat_settings=true")
    flat = got[index]["settings"]  # type: ignore[index]
    return {k: flat[k] for k in KEYS if k in flat}


def copying(kube: KubeAPIServer, namespace: str, name: str = "copy") -> dict[str, Any]:
    return kube.wait_for("backfill", namespace, name,
                         lambda o: o["status"]["phase"] == "Running"
                         and o["status"]["progress"]["docsMigrated"] > 0, timeout=90)


def still_copying(kube: KubeAPIServer, namespace: str, name: str = "copy") -> None:
    """What was read before this call was read during the copy."""
    obj = kube.get("backfill", namespace, name)
    assert obj is not None and obj["status"]["phase"] == "Running", obj and obj["status"]
    assert obj["status"]["progress"]["docsMigrated"] < DOCS


def reasons(kube: KubeAPIServer, namespace: str) -> set[str]:
    return {e["reason"] for e in kube.events(namespace, "copy")}


def copy_observed(kube: KubeAPIServer, es: SearchNode, target_node: SearchNode,
                  namespace: str, src: str, via: str | None = None, **spec: Any
                  ) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Start Backfill "copy" of one index (to the target node, or through ``via``); its
    target's settings read during the copy, and the Backfill as it was then."""
    target = f"{namespace}-{src}"
    kube.apply(namespace, *clusters(es.url, via or target_node.url),
               backfill(indices=[src], targetNaming={"prefix": f"{namespace}-"}, **spec))
    obj = copying(kube, namespace)
    during = settings(target_node, target)
    still_copying(kube, namespace)
    return target, during, obj


def test_tuned_during_the_copy_and_restored_before_verification(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, sources: list[str], namespace: str) -> None:
    target, during, obj = copy_observed(kube, elasticsearch, opensearch, namespace,
                                        sources[0], **{**QUICK, "targetTuning": {
                                            **TUNED, "translogAsync": True}})
    assert during == {**LOAD, "index.translog.durability": "async"}
    tuning = obj["status"]["tuning"]
    assert tuning["state"] == "Tuned" and tuning["indicesTuned"] == 1
    assert tuning["originals"] == [{"name": target, "settings": ORIGINAL}]
    coord = obj["status"]["coordinationIndex"]
    record = opensearch.request("GET", f"/{coord}/_doc/tuning")["_source"]["tuning"]  # type: ignore[index]
    assert record["indices"][target]["original"] == ORIGINAL

    obj = kube.wait_for("backfill", namespace, "copy", phase_in("Completed", "Failed",
                                                                "CompletedWithErrors"),
                        timeout=120)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    # Back to its own values; the durability it never had set is unset again.
    assert settings(opensearch, target) == ORIGINAL
    assert obj["status"]["tuning"]["state"] == "Restored"
    assert obj["status"]["tuning"]["indicesMissing"] == []
    assert {"TargetTuned", "TuningRestored"} <= reasons(kube, namespace)
    assert count(opensearch, target) == DOCS


def test_restored_while_the_last_seconds_are_copied(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, sources: list[str], namespace: str,
        proxies: list[ReverseProxy]) -> None:
    """With nothing left to claim, a worker whose item ends within seconds puts the
    settings back, so that the refresh before verification finds little to write:
    copy bulks still follow the restore, and verification does not restore again."""
    target = f"{namespace}-{sources[0]}"
    seen: list[str] = []
    lock = threading.Lock()

    def watch(request: Request) -> None:
        with lock:
            if request.path.startswith("/_bulk") \
                    and f'"_index":"{target}"'.encode() in request.body:
                seen.append("bulk")
            elif request.method == "PUT" and request.path.startswith(f"/{target}/_settings"):
                seen.append("restore" if b'"7s"' in request.body else "tune")

    proxy = ReverseProxy(opensearch.url, gate=lambda r: watch(r) or None).start()
    proxies.append(proxy)
    kube.apply(namespace, *clusters(elasticsearch.url, proxy.url),
               backfill(indices=[sources[0]], targetNaming={"prefix": f"{namespace}-"},
                        **QUICK))
    obj = kube.wait_for("backfill", namespace, "copy", phase_in("Completed", "Failed",
                                                                "CompletedWithErrors"),
                        timeout=120)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    assert count(opensearch, target) == DOCS
    assert settings(opensearch, target) == ORIGINAL
    with lock:
        assert seen.count("tune") == 1 and seen.count("restore") == 1, seen
        tuned, restored = seen.index("tune"), seen.index("restore")
        after = seen[restored:].count("bulk")
    # 2,000 documents at 200 a second in bulks of 100: tuned for most of them, restored
    # for about the last two seconds' (4 bulks).
    assert seen[:tuned].count("bulk") == 0 and seen[tuned:restored].count("bulk") >= 10
    assert 1 <= after <= 8, seen
    early = [e for e in kube.events(namespace, "copy") if e["reason"] == "TuningRestored"]
    assert [e["message"] for e in early] == [
        "original settings restored on 1 target indices while the last work items were "
        "copied, so that the refresh before verification is short"]


def test_deleting_the_backfill_mid_copy_restores(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, sources: list[str], namespace: str) -> None:
    target, during, _ = copy_observed(kube, elasticsearch, opensearch, namespace,
                                      sources[0], **SLOW)
    assert during == LOAD
    kube.kubectl("delete", "backfill", "copy", "-n", namespace, "--timeout=90s")
    assert settings(opensearch, target) == ORIGINAL
    assert "TuningRestored" in reasons(kube, namespace)
    assert 0 < count(opensearch, target) < DOCS  # the copied part stays


def test_after_a_crash_pause_restores_the_recorded_originals_and_resume_tunes_again(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, sources: list[str], namespace: str) -> None:
    target, during, _ = copy_observed(kube, elasticsearch, opensearch, namespace,
                                      sources[0], **SLOW)
    assert during == LOAD
    # A crash while tuned: the restarted operator must restore the recorded originals,
    # not take the load settings it finds on the target for originals.
    operator.kill()
    operator.start()
    kube.kubectl("patch", "backfill", "copy", "-n", namespace, "--type=merge",
                 "-p", '{"spec":{"paused":true}}')
    obj = kube.wait_for("backfill", namespace, "copy",
                        lambda o: o["status"]["phase"] == "Paused"
                        and o["status"]["tuning"]["state"] == "Restored", timeout=60)
    assert settings(opensearch, target) == ORIGINAL
    assert obj["status"]["progress"]["docsMigrated"] < DOCS
    # Slower now, so that the rest of the copy is still running when it is read.
    kube.kubectl("patch", "backfill", "copy", "-n", namespace, "--type=merge",
                 "-p", '{"spec":{"paused":false,"throttle":{"maxDocsPerSecond":40}}}')
    kube.wait_for("backfill", namespace, "copy",
                  lambda o: o["status"]["phase"] == "Running"
                  and o["status"]["tuning"]["state"] == "Tuned", timeout=60)
    again = settings(opensearch, target)
    still_copying(kube, namespace)
    assert again == LOAD


def test_tuning_off_changes_nothing_and_an_existing_index_is_never_tuned(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, sources: list[str], namespace: str) -> None:
    created, existing = sources
    prefix = f"{namespace}-"
    # The user's own (empty) index, there before the Backfill, with its own settings.
    own = {"index.refresh_interval": "9s", "index.number_of_replicas": "1"}
    opensearch.request("PUT", f"/{prefix}{existing}", {"settings": own})
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill(indices=[created, existing], targetNaming={"prefix": prefix},
                        **SLOW),
               backfill("untuned", indices=[created],
                        targetNaming={"prefix": f"{prefix}off-"},
                        **{**SLOW, "targetTuning": {"enabled": False}}),
               # Tuning on, by default, but the index is planned with fewer documents
               # than minDocuments (10,000 by default): left as it is.
               backfill("small", indices=[created], targetNaming={"prefix": f"{prefix}few-"},
                        **{k: v for k, v in SLOW.items() if k != "targetTuning"}))
    for name in ("copy", "untuned", "small"):
        copying(kube, namespace, name)
    tuned_one = settings(opensearch, f"{prefix}{created}")
    users = settings(opensearch, f"{prefix}{existing}")
    untuned = settings(opensearch, f"{prefix}off-{created}")
    few = settings(opensearch, f"{prefix}few-{created}")
    for name in ("copy", "untuned", "small"):
        still_copying(kube, namespace, name)
    assert tuned_one == LOAD  # tuning works in this very run ...
    assert users == own  # ... but not on an index the Backfill did not create
    assert untuned == ORIGINAL  # ... nor with tuning off
    assert few == ORIGINAL  # ... nor on one below minDocuments
    obj = kube.get("backfill", namespace, "copy")
    assert obj is not None and obj["status"]["tuning"]["indicesTuned"] == 1
    for name in ("untuned", "small"):
        off = kube.get("backfill", namespace, name)
        assert off is not None and "tuning" not in off["status"], name



def test_a_failed_backfill_restores(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, sources: list[str], namespace: str,
        proxies: list[ReverseProxy]) -> None:
    refuse = threading.Event()

    def rejecting(request: Request) -> Refusal | None:
        """Once set: every document of a bulk rejected, as a strict mapping would."""
        if not (refuse.is_set() and request.path.startswith("/_bulk")):
            return None
        actions = [json.loads(line) for line in request.body.splitlines()[::2]]
        items = [{op: {"_index": a["_index"], "_id": a["_id"], "status": 400, "error": {
            "type": "mapper_parsing_exception", "reason": "refused by the test"}}}
            for entry in actions for op, a in entry.items()]
        return Refusal(200, json.dumps({"took": 1, "errors": True, "items": items}).encode())

    proxy = ReverseProxy(opensearch.url, gate=rejecting).start()
    proxies.append(proxy)
    target, during, _ = copy_observed(kube, elasticsearch, opensearch, namespace,
                                      sources[0], via=proxy.url, **SLOW)
    assert during == LOAD
    refuse.set()
    obj = kube.wait_for("backfill", namespace, "copy", phase_in("Failed"), timeout=60)
    assert condition(obj, "Failed")["reason"] == "TooManyFailures"
    assert settings(opensearch, target) == ORIGINAL
    assert obj["status"]["tuning"]["state"] == "Restored"
