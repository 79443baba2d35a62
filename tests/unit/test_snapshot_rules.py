"""Snapshot rules without a cluster: request bodies, conflicts, status and events."""

from __future__ import annotations

from typing import Any, cast

import pytest

from ferry.api.common import dump_status
from ferry.api.snapshot import Repository, SnapshotSpec, SnapshotStatus
from ferry.clients.engine import Engine, EngineInfo, Refused
from ferry.clients.kube import ObjectReader
from ferry.errors import ClusterUnreachable, FerryError, InvalidSpec, SnapshotFailed
from ferry.services.references import References, missing
from ferry.services.snapshot.reconciler import (
    SETTLED_RECHECK,
    SnapshotReconciler,
    deletion_retry_delay,
)
from ferry.services.snapshot.repository import (
    DOCUMENTED_FS_SETTINGS,
    DOCUMENTED_S3_SETTINGS,
    Verification,
    repository_body,
    repository_conflict,
)
from ferry.services.snapshot.service import (
    IndexProgress,
    Progress,
    SnapshotInfo,
    SnapshotObservation,
    SnapshotService,
    index_expression,
    parse_snapshot_info,
    parse_status,
    snapshot_body,
    supports_snapshot_metadata,
)
from ferry.services.snapshot.status import (
    SLOW_RETRY,
    build_status,
    needs_verification,
    percent_done,
    poll_delay,
    retry_delay,
    settled,
    transition_events,
    with_verification,
)

S3_FULL = {"name": "backups", "type": "s3", "compress": True,
           "maxSnapshotBytesPerSec": "40mb",
           "s3": {"bucket": "my-bucket", "basePath": "/ferry/prod/", "region": "eu-west-1",
                  "endpoint": "http://minio.storage:9000", "pathStyleAccess": True}}


@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_s3_body_uses_only_documented_settings(engine: str) -> None:
    body = repository_body(Repository.model_validate(S3_FULL), engine)
    assert body["type"] == "s3"
    settings = body["settings"]
    assert set(settings) <= DOCUMENTED_S3_SETTINGS[engine]
    assert settings == {
        "bucket": "my-bucket", "base_path": "ferry/prod", "region": "eu-west-1",
        # endpoint is the host; the scheme goes in protocol (both engines' client settings)
        "endpoint": "minio.storage:9000", "protocol": "http", "path_style_access": True,
        "compress": True, "max_snapshot_bytes_per_sec": "40mb",
    }
    # No credentials ever: they live in the nodes' keystores.
    assert not {"access_key", "secret_key", "session_token"} & set(settings)


def test_s3_body_minimal_and_https_default() -> None:
    repo = Repository.model_validate({"name": "r", "type": "s3",
                                      "s3": {"bucket": "b-1", "endpoint": "s3.example.com"}})
    settings = repository_body(repo, "opensearch")["settings"]
    assert settings == {"bucket": "b-1", "endpoint": "s3.example.com", "protocol": "https",
                        "compress": True}


def test_role_arn_is_opensearch_only() -> None:
    spec = {**S3_FULL, "s3": {**S3_FULL["s3"], "roleArn": "arn:aws:iam::1:role/snap"}}
    repo = Repository.model_validate(spec)
    assert repository_body(repo, "opensearch")["settings"]["role_arn"] == \
        "arn:aws:iam::1:role/snap"
    with pytest.raises(InvalidSpec, match="roleArn"):
        repository_body(repo, "elasticsearch")


def test_fs_body() -> None:
    repo = Repository.model_validate({"name": "r", "type": "fs", "compress": False,
                                      "fs": {"location": "/mnt/snap"},
                                      "maxRestoreBytesPerSec": "1gb"})
    body = repository_body(repo, "elasticsearch")
    assert body == {"type": "fs", "settings": {"location": "/mnt/snap", "compress": False,
                                               "max_restore_bytes_per_sec": "1gb"}}
    assert set(body["settings"]) <= DOCUMENTED_FS_SETTINGS


def test_repository_conflict_rules() -> None:
    desired = {"type": "fs", "settings": {"location": "/r/a", "compress": True,
                                          "max_snapshot_bytes_per_sec": "40mb"}}
    # The engine answers with strings; a trailing slash is the same place.
    same = {"type": "fs", "settings": {"location": "/r/a/", "compress": "true",
                                       "max_snapshot_bytes_per_sec": "40mb"}}
    assert repository_conflict(same, desired) is None
    # Settings only one side has are not a conflict: the registered one is used as is.
    assert repository_conflict({"type": "fs", "settings": {"location": "/r/a"}},
                               desired) is None
    moved = {"type": "fs", "settings": {"location": "/r/b"}}
    assert "location='/r/b'" in (repository_conflict(moved, desired) or "")
    throttled = {"type": "fs", "settings": {"location": "/r/a",
                                            "max_snapshot_bytes_per_sec": "1mb"}}
    assert "max_snapshot_bytes_per_sec" in (repository_conflict(throttled, desired) or "")
    assert "type" in (repository_conflict({"type": "s3", "settings": {}}, desired) or "")
    read_only = {"type": "fs", "settings": {"location": "/r/a", "readonly": "true"}}
    assert "readonly" in (repository_conflict(read_only, desired) or "")
    s3 = {"type": "s3", "settings": {"bucket": "b"}}
    assert "base_path" in (repository_conflict(
        s3, {"type": "s3", "settings": {"bucket": "b", "base_path": "x"}}) or "")


def test_index_expression() -> None:
    assert index_expression([]) == "*,-.*"
    assert index_expression(["logs-*", "-logs-debug-*"]) == "logs-*,-logs-debug-*"
    assert index_expression(["-secret"]) == "*,-.*,-secret"


def test_snapshot_body_and_owner_tag() -> None:
    spec = SnapshotSpec.model_validate({"clusterRef": {"name": "c"}, "partial": True,
                                        "repository": {"name": "r", "type": "fs",
                                                       "fs": {"location": "/r"}}})
    body = snapshot_body(spec, "ns/snap")
    assert body == {"indices": "*,-.*", "include_global_state": False, "partial": True,
                    "ignore_unavailable": False, "metadata": {"ferry.dev/owner": "ns/snap"}}
    assert "metadata" not in snapshot_body(spec, None)
    assert supports_snapshot_metadata("opensearch", "1.0.0")
    assert supports_snapshot_metadata("elasticsearch", "7.10.2")
    assert not supports_snapshot_metadata("elasticsearch", "6.8.23")


def info(state: str = "IN_PROGRESS", **kw: Any) -> SnapshotInfo:
    base: dict[str, Any] = dict(
        name="s", uuid="u1", state=state, version="7.10.2", indices=["a", "b"],
        start_ms=1_700_000_000_000, end_ms=None, reason=None, shards_total=None,
        shards_failed=None, shards_successful=None, failures=[], metadata={})
    base.update(kw)
    return SnapshotInfo(**base)


def progress(done: int, total: int, shards_done: int = 1, time_ms: int = 2000) -> Progress:
    return Progress(state="STARTED", shards_total=3, shards_done=shards_done, shards_failed=0,
                    bytes_total=total, bytes_done=done, time_ms=time_ms,
                    indices=[IndexProgress("a", 2, 1), IndexProgress("b", 1, 0)])


def test_percent_by_bytes_else_shards_never_100_before_the_end() -> None:
    assert percent_done(info(), progress(500, 1000)) == 50.0
    assert percent_done(info(), progress(1000, 1000)) == 99.9
    assert percent_done(info(), progress(0, 0, shards_done=1)) == 33.3
    assert percent_done(info("SUCCESS"), None) == 100.0
    assert percent_done(info(), None) is None


def test_in_progress_status_with_rate_eta_and_counts() -> None:
    obs = SnapshotObservation(info=info(), progress=progress(400, 1000),
                              engine="elasticsearch", started=True, adopted=False,
                              documents={"a": 5})
    status = build_status({}, 3, "s", obs)
    assert status["phase"] == "InProgress"
    assert status["observedGeneration"] == 3
    assert status["adopted"] is False
    assert status["progress"] == {"percent": 40.0, "shardsTotal": 3, "shardsDone": 1,
                                  "shardsFailed": 0, "bytesTotal": 1000, "bytesDone": 400,
                                  "bytesPerSecond": 200.0, "etaSeconds": 3,
                                  "completion": "40%", "size": "1000B", "rate": "200B/s",
                                  "eta": "3s"}
    assert status["indices"] == [
        {"name": "a", "state": "IN_PROGRESS", "shardsTotal": 2, "shardsDone": 1,
         "shardsFailed": 0, "documents": 5},
        {"name": "b", "state": "IN_PROGRESS", "shardsTotal": 1, "shardsDone": 0,
         "shardsFailed": 0, "documents": 0}]
    assert status["documents"] == 5
    assert status["startTime"] == "2023-11-14T22:13:20Z"
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {"Ready": ("False", "InProgress"),
                          "Progressing": ("True", "InProgress"),
                          "Failed": ("False", "InProgress"),
                          "Reconciling": ("True", "InProgress"),
                          "Stalled": ("False", "InProgress")}
    SnapshotStatus.model_validate(status)  # the CRD's schema comes from this model
    events = transition_events({}, status, obs, "repo")
    assert [(e.type, e.reason) for e in events] == [("Normal", "Started")]
    # The next poll: counts are kept, no event.
    later = SnapshotObservation(info=info(), progress=progress(800, 1000),
                                engine="elasticsearch")
    again = build_status(status, 3, "s", later)
    assert again["indices"][0]["documents"] == 5 and again["documents"] == 5
    assert transition_events(status, again, later, "repo") == []


def test_completed_then_verified_then_settled() -> None:
    running = build_status({}, 1, "s", SnapshotObservation(
        info=info(), progress=progress(1, 2), engine="opensearch", started=True,
        adopted=False, repository_registered=True))
    done_info = info("SUCCESS", end_ms=1_700_000_060_000, shards_total=3,
                     shards_successful=3, shards_failed=0)
    done = build_status(running, 1, "s", SnapshotObservation(info=done_info, progress=None,
                                                             engine="opensearch"))
    assert done["phase"] == "Completed"
    assert done["completionTime"] == "2023-11-14T22:14:20Z"
    assert done["progress"]["percent"] == 100.0
    assert (done["progress"]["shardsDone"], done["progress"]["shardsTotal"]) == (3, 3)
    assert needs_verification(done) and not settled(done)
    ready = next(c for c in done["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Completed")
    verified = with_verification(done, Verification("True", "FoundInRepository", "ok"), 1)
    assert settled(verified) and not needs_verification(verified)
    events = transition_events(running, verified,
                               SnapshotObservation(done_info, None, "opensearch"), "repo")
    assert [(e.type, e.reason) for e in events] == [("Normal", "Completed"),
                                                   ("Normal", "FoundInRepository")]
    SnapshotStatus.model_validate(verified)


def test_partial_lists_bounded_failures() -> None:
    failures = [{"index": f"i{n}", "shard_id": n, "reason": "primary shard is not allocated",
                 "status": "INTERNAL_SERVER_ERROR"} for n in range(30)]
    partial = info("PARTIAL", shards_total=32, shards_successful=2, shards_failed=30,
                   failures=failures)
    status = build_status({}, 1, "s", SnapshotObservation(partial, None, "elasticsearch",
                                                          adopted=False))
    assert status["phase"] == "PartiallyFailed"
    assert len(status["failures"]) == 20
    assert status["failures"][0] == {"index": "i0", "id": "shard 0",
                                     "reason": "primary shard is not allocated"}
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "PartiallyFailed")
    assert "30 shards failed" in failed["message"]
    SnapshotStatus.model_validate(status)


def test_failed_snapshot_keeps_the_engines_reason() -> None:
    status = build_status({}, 1, "s", SnapshotObservation(
        info("FAILED", reason="Indices don't have primary shards [x]"), None, "opensearch",
        adopted=False))
    assert status["phase"] == "Failed"
    assert "Indices don't have primary shards [x]" in status["message"]
    assert settled(status)  # nothing to verify for a failed snapshot


def test_errors_before_and_after_the_start() -> None:
    unreachable = ClusterUnreachable("connection to http://x refused", code="ConnectionRefused")
    pending = build_status({}, 1, "s", unreachable)
    assert pending["phase"] == "Pending"
    assert not settled(pending)
    conflict = FerryError("repository r is already registered ...", code="RepositoryConflict",
                          retryable=False)
    failed = build_status({}, 1, "s", conflict)
    assert failed["phase"] == "Failed"
    assert not settled(failed)  # retried slowly: the conflict may be resolved on the cluster
    assert [(e.type, e.reason) for e in transition_events(pending, failed, conflict, "r")] \
        == [("Warning", "RepositoryConflict")]
    # Once started, an unreachable cluster does not stop the snapshot inside it.
    running = build_status({}, 1, "s", SnapshotObservation(info(), progress(1, 2),
                                                           "opensearch", started=True,
                                                           adopted=False))
    blip = build_status(running, 1, "s", unreachable)
    assert blip["phase"] == "InProgress"
    assert blip["progress"] == running["progress"]
    progressing = next(c for c in blip["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "ConnectionRefused")


def test_poll_backs_off_from_2_to_30_seconds() -> None:
    delays = [poll_delay(n) for n in range(12)]
    assert delays[0] == 2.0 and delays[1] == 3.0
    assert delays == sorted(delays) and delays[-1] == 30.0


def test_parse_engine_answers() -> None:
    raw = {"snapshot": "s", "uuid": "u", "version": "2.19.6", "indices": ["b", "a"],
           "state": "PARTIAL", "start_time_in_millis": 1, "end_time_in_millis": 2,
           "failures": [{"index": "a", "shard_id": 0, "reason": "r"}],
           "shards": {"total": 2, "failed": 1, "successful": 1},
           "metadata": {"ferry.dev/owner": "ns/s"}}
    parsed = parse_snapshot_info(raw)
    assert parsed.indices == ["a", "b"] and parsed.owner == "ns/s" and parsed.terminal
    status = parse_status({"state": "STARTED",
                           "shards_stats": {"total": 2, "done": 1, "failed": 0},
                           "stats": {"incremental": {"size_in_bytes": 100},
                                     "processed": {"size_in_bytes": 40},
                                     "time_in_millis": 10},
                           "indices": {"a": {"shards_stats": {"total": 2, "done": 1}}}})
    assert (status.bytes_total, status.bytes_done, status.shards_done) == (100, 40, 1)
    # `processed` is left out once it equals `incremental`.
    done = parse_status({"stats": {"incremental": {"size_in_bytes": 100}}})
    assert done.bytes_done == 100


# The condition table, the delays, the reconciler and the service's request paths.


def conditions_of(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_condition_table_decides_each_phase() -> None:
    # (phase, look, reason, (Ready, Progressing, Failed, Reconciling, Stalled)) — written
    # out here, not read from the table under test.
    looks: list[tuple[str, SnapshotObservation | FerryError, str, tuple[str, ...]]] = [
        ("InProgress", SnapshotObservation(info(), progress(1, 2), "opensearch",
                                           adopted=False), "InProgress",
         ("False", "True", "False", "True", "False")),
        ("Completed", SnapshotObservation(info("SUCCESS"), None, "opensearch",
                                          adopted=False), "Completed",
         ("True", "False", "False", "False", "False")),
        ("PartiallyFailed", SnapshotObservation(info("PARTIAL"), None, "opensearch",
                                                adopted=False), "PartiallyFailed",
         ("False", "False", "True", "False", "True")),
        ("Failed", SnapshotObservation(info("INCOMPATIBLE"), None, "opensearch",
                                       adopted=False), "SnapshotFailed",
         ("False", "False", "True", "False", "True")),
        ("Pending", ClusterUnreachable("down", code="Timeout"), "Timeout",
         ("False", "False", "False", "True", "False")),
        ("Failed", InvalidSpec("spec does not parse: spec.repository: Field required"),
         "InvalidSpec", ("False", "False", "True", "False", "True")),
    ]
    for phase, look, reason, expected in looks:
        status = build_status({}, 2, "s", look)
        assert status["phase"] == phase
        assert conditions_of(status) == {
            t: (s, reason) for t, s in zip(("Ready", "Progressing", "Failed", "Reconciling",
                                            "Stalled"), expected, strict=True)}
        assert {c["message"] for c in status["conditions"]} == {status["message"]}
        assert all(c["observedGeneration"] == 2 for c in status["conditions"])
        dump_status(SnapshotStatus, status)  # no key the model does not know


def test_unobserved_keeps_the_phase_and_a_missing_snapshot_fails() -> None:
    done = build_status({}, 1, "s", SnapshotObservation(info("SUCCESS"), None, "opensearch",
                                                        adopted=False))
    blip = build_status(done, 1, "s", ClusterUnreachable("down", code="Timeout"))
    assert blip["phase"] == "Completed"
    assert conditions_of(blip) == {"Ready": ("False", "Timeout"),
                                   "Progressing": ("Unknown", "Timeout"),
                                   "Failed": ("False", "Timeout"),
                                   "Reconciling": ("True", "Timeout"),
                                   "Stalled": ("False", "Timeout")}
    gone = FerryError("snapshot s is no longer in repository r", code="SnapshotMissing",
                      retryable=False)
    missing = build_status(done, 1, "s", gone)
    assert missing["phase"] == "Failed"
    assert conditions_of(missing)["Failed"] == ("True", "SnapshotMissing")


def test_retry_delay_backs_off_from_5_to_30_seconds() -> None:
    retryable = ClusterUnreachable("down")
    assert 4.5 <= retry_delay(retryable, 1) <= 5.5
    assert 9.0 <= retry_delay(retryable, 2) <= 11.0
    assert 27.0 <= retry_delay(retryable, 12) <= 33.0
    assert retry_delay(FerryError("conflict", retryable=False), 1) == SLOW_RETRY == 300.0


def test_deletion_retry_delay_is_capped_and_never_past_the_bound() -> None:
    assert 1.8 <= deletion_retry_delay(0, elapsed=0, limit=600) <= 2.2
    assert 3.6 <= deletion_retry_delay(1, elapsed=0, limit=600) <= 4.4
    assert deletion_retry_delay(10, elapsed=0, limit=600) <= 30.0
    assert deletion_retry_delay(10, elapsed=0, limit=600) >= 27.0
    assert deletion_retry_delay(10, elapsed=595, limit=600) <= 5.0
    assert deletion_retry_delay(10, elapsed=600, limit=600) == 1.0


def test_snapshot_metadata_since_elasticsearch_7_3() -> None:
    assert supports_snapshot_metadata("elasticsearch", "7.3.0")
    assert not supports_snapshot_metadata("elasticsearch", "7.2.1")
    assert not supports_snapshot_metadata("elasticsearch", "")
    assert supports_snapshot_metadata("opensearch", "")


class NoClusters(References):
    """References in a namespace where no Cluster exists."""

    def __init__(self) -> None:
        super().__init__("ns", ObjectReader())
        self.asked: list[str] = []

    def engine(self, name: str, spec: Any = None, **overrides: Any) -> Engine:
        self.asked.append(name)
        raise missing("Cluster", name)


SPEC = {"clusterRef": {"name": "source"},
        "repository": {"name": "r", "type": "fs", "fs": {"location": "/r"}}}


def view(spec: dict[str, Any], status: dict[str, Any], generation: int = 1
         ) -> dict[str, Any]:
    return {"metadata": {"name": "nightly", "namespace": "ns", "generation": generation},
            "spec": spec, "status": status}


def test_reconciler_without_its_cluster_is_pending_and_backs_off() -> None:
    references = NoClusters()
    reconciler = SnapshotReconciler("ns", "nightly", references)
    first = reconciler.reconcile(view(SPEC, {}))
    assert references.asked == ["source"]
    assert first.status is not None
    assert first.status["phase"] == "Pending"
    assert first.status["snapshotName"] == "nightly"
    assert conditions_of(first.status)["Ready"] == ("False", "ClusterNotFound")
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "ClusterNotFound")]
    assert 4.5 <= first.delay <= 5.5
    second = reconciler.reconcile(view(SPEC, first.status))
    assert second.events == []  # the same reason again: no second event
    assert 9.0 <= second.delay <= 11.0
    dump_status(SnapshotStatus, second.status)


def test_reconciler_with_a_spec_the_models_refuse_fails_slowly() -> None:
    references = NoClusters()
    reconciler = SnapshotReconciler("ns", "nightly", references)
    outcome = reconciler.reconcile(view({"clusterRef": {"name": "source"}}, {}))
    assert references.asked == []  # nothing is asked of a cluster for a bad spec
    assert outcome.status is not None and outcome.status["phase"] == "Failed"
    assert conditions_of(outcome.status)["Failed"] == ("True", "InvalidSpec")
    assert "spec.repository" in outcome.status["message"]
    assert outcome.delay == SLOW_RETRY


def test_settled_reconciler_only_keeps_observed_generation_current() -> None:
    references = NoClusters()
    reconciler = SnapshotReconciler("ns", "nightly", references)
    done = build_status({}, 1, "nightly", SnapshotObservation(info("FAILED"), None,
                                                              "opensearch", adopted=False))
    assert settled(done)
    same = reconciler.reconcile(view(SPEC, done, generation=1))
    assert (same.status, same.events, same.delay) == (None, [], SETTLED_RECHECK)
    changed = reconciler.reconcile(view(SPEC, done, generation=2))
    assert changed.status == {**done, "observedGeneration": 2}
    assert changed.events == [] and changed.delay == SETTLED_RECHECK
    assert references.asked == []


class FakeEngine(Engine):
    """Answers from a table of (method, path) -> an answer or an error to raise."""

    def __init__(self, answers: dict[tuple[str, str], Any], engine: str = "elasticsearch",
                 version: str = "7.10.2") -> None:
        super().__init__(cast(Any, None), "http://es:9200")
        self.answers = answers
        self.sent: list[tuple[str, str, bool]] = []
        self._info = EngineInfo(engine, None, version)

    def request(self, method: str, path: str, *, params: Any = None, body: Any = None,
                headers: Any = None, missing_ok: bool = True) -> Any:
        self.sent.append((method, path, missing_ok))
        answer = self.answers.get((method, path))
        if isinstance(answer, Exception):
            raise answer
        if answer is None and not missing_ok:
            raise refused(404, "not_found: nothing here")
        return answer


def refused(status: int, reason: str) -> Refused:
    return Refused(f"http://es:9200 answered HTTP {status}: {reason}", reason=reason,
                   text=reason, status=status)


REPO = Repository.model_validate({"name": "r", "type": "fs", "fs": {"location": "/r"}})


def test_ensure_repository_registers_verifies_and_never_overwrites() -> None:
    engine = FakeEngine({("PUT", "/_snapshot/r"): {"acknowledged": True},
                         ("POST", "/_snapshot/r/_verify"): {"nodes": {}}})
    assert SnapshotService(engine).ensure_repository(REPO, "elasticsearch") is True
    assert [m for m, _, _ in engine.sent] == ["GET", "PUT", "POST"]
    theirs = {"r": {"type": "fs", "settings": {"location": "/elsewhere"}}}
    engine = FakeEngine({("GET", "/_snapshot/r"): theirs})
    with pytest.raises(FerryError) as conflict:
        SnapshotService(engine).ensure_repository(REPO, "elasticsearch")
    assert (conflict.value.code, conflict.value.retryable) == ("RepositoryConflict", False)
    assert [m for m, _, _ in engine.sent] == ["GET"]
    same = {"r": {"type": "fs", "settings": {"location": "/r/", "readonly": "true"}}}
    engine = FakeEngine({("GET", "/_snapshot/r"): same,
                         ("POST", "/_snapshot/r/_verify"): {"nodes": {}}})
    assert SnapshotService(engine).ensure_repository(REPO, "elasticsearch",
                                                     readonly=True) is False


def test_ensure_repository_refusals_keep_their_codes() -> None:
    for answer, detail in ((None, "not_found: nothing here"),
                           (refused(500, "repository_exception: no type [s3]"),
                            "repository_exception: no type [s3]")):
        engine = FakeEngine({("PUT", "/_snapshot/r"): answer})
        with pytest.raises(FerryError) as invalid:
            SnapshotService(engine).ensure_repository(REPO, "elasticsearch")
        assert (invalid.value.code, invalid.value.retryable) == ("RepositoryInvalid", False)
        assert invalid.value.message.startswith("cannot register repository r: ")
        assert detail in invalid.value.message
    engine = FakeEngine({("PUT", "/_snapshot/r"): {"acknowledged": True},
                         ("POST", "/_snapshot/r/_verify"): refused(
                             500, "repository_verification_exception: cannot write")})
    with pytest.raises(FerryError) as unverified:
        SnapshotService(engine).ensure_repository(REPO, "elasticsearch")
    assert unverified.value.code == "RepositoryVerificationFailed"
    assert "cannot write" in unverified.value.message


def test_start_adopts_refuses_and_deletes_through_the_engine() -> None:
    spec = SnapshotSpec.model_validate(SPEC)
    path = "/_snapshot/r/s"
    exists = refused(400, "invalid_snapshot_name_exception: snapshot with the same name "
                     "already exists")
    assert SnapshotService(FakeEngine({("PUT", path): exists})).start(spec, "s", None) \
        is False
    with pytest.raises(SnapshotFailed, match="the engine refused the snapshot: not_found"):
        SnapshotService(FakeEngine({})).start(spec, "s", None)
    with pytest.raises(SnapshotFailed) as failed:
        SnapshotService(FakeEngine({("PUT", path): refused(400, "bad: x")})).start(
            spec, "s", None)
    assert not failed.value.retryable
    listed = {"snapshots": [{"snapshot": "s", "uuid": "u", "state": "SUCCESS",
                             "metadata": {"ferry.dev/owner": "ns/nightly"}}]}
    assert SnapshotService(FakeEngine({})).get("r", "s") is None
    assert SnapshotService(FakeEngine({})).delete("r", "s", "ns/nightly", False) == "NotFound"
    theirs = FakeEngine({("GET", path): listed})
    assert SnapshotService(theirs).delete("r", "s", "ns/other", False) == "NotOwned"
    # Gone between the look and the DELETE: deleted all the same.
    racing = FakeEngine({("GET", path): listed})
    assert SnapshotService(racing).delete("r", "s", "ns/nightly", False) == "Deleted"
    assert ("DELETE", path, True) in racing.sent


def test_start_or_adopt_tags_the_owner_only_where_metadata_exists() -> None:
    spec = SnapshotSpec.model_validate(SPEC)
    running = {"snapshots": [{"snapshot": "s", "uuid": "u", "state": "IN_PROGRESS",
                              "indices": ["a"]}]}

    class Starting(FakeEngine):
        def request(self, method: str, path: str, **kw: Any) -> Any:
            if (method, path) == ("PUT", "/_snapshot/r/s"):
                self.answers[("GET", "/_snapshot/r/s")] = running
                self.body = kw.get("body")
            return super().request(method, path, **kw)

    answers = {("PUT", "/_snapshot/r"): {"acknowledged": True},
               ("POST", "/_snapshot/r/_verify"): {},
               ("PUT", "/_snapshot/r/s"): {"accepted": True},
               ("POST", "/*,-.*/_search"): {"aggregations": {"by_index": {"buckets": [
                   {"key": "a", "doc_count": 3}]}}}}
    for version, tagged in (("7.10.2", True), ("6.8.23", False)):
        engine = Starting(dict(answers), version=version)
        observation = SnapshotService(engine).start_or_adopt(spec, "s", "ns/nightly")
        assert (observation.started, observation.adopted) == (True, False)
        assert observation.repository_registered and observation.documents == {"a": 3}
        assert observation.engine == "elasticsearch"
        assert ("metadata" in engine.body) is tagged


def test_an_untagged_snapshot_is_deleted_only_if_it_is_the_one_recorded() -> None:
    """ES < 7.3 has no owner tag: the resource's recorded uuid (else start time) decides,
    so another snapshot taken under the same name since is never deleted."""
    path = "/_snapshot/r/s"
    listed = {"snapshots": [{"snapshot": "s", "uuid": "u2", "state": "SUCCESS",
                             "start_time_in_millis": 1_700_000_000_000}]}
    service = SnapshotService(FakeEngine({("GET", path): listed}, version="6.8.23"))
    assert service.delete("r", "s", "ns/nightly", False, started=("u1", None)) == "NotOwned"
    assert service.delete("r", "s", "ns/nightly", False,
                          started=(None, "2023-11-14T22:13:21Z")) == "NotOwned"
    for started in (("u2", None), (None, "2023-11-14T22:13:20Z"), (None, None)):
        engine = FakeEngine({("GET", path): listed}, version="6.8.23")
        assert SnapshotService(engine).delete("r", "s", "ns/nightly", False,
                                              started=started) == "Deleted"
        assert ("DELETE", path, True) in engine.sent
