"""The generated CRDs against a real API server: accepted, rejected, explained, scaled."""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.kube import KubeAPIServer

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CLUSTER = {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
           "metadata": {"name": "c1"}, "spec": {"endpoint": "http://127.0.0.1:9200"}}
SNAPSHOT = {"apiVersion": "ferry.dev/v1alpha1", "kind": "Snapshot",
            "metadata": {"name": "s1"},
            "spec": {"clusterRef": {"name": "c1"}, "indices": ["logs-*"],
                     "repository": {"name": "repo", "type": "fs", "fs": {"location": "/r"}}}}
BACKFILL = {"apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill",
            "metadata": {"name": "b1"},
            "spec": {"sourceRef": {"name": "src"}, "targetRef": {"name": "dst"}}}


def _with(base: dict[str, Any], **spec: Any) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    for key, value in spec.items():
        if value is None:
            obj["spec"].pop(key, None)
        else:
            obj["spec"][key] = value
    return obj


def _apply(kube: KubeAPIServer, ns: str, obj: dict[str, Any], verb: str = "create"):
    return kube.kubectl(verb, "-n", ns, "-f", "-", input=json.dumps(obj), check=False)


def test_crds_are_established_with_names_and_categories(crds: KubeAPIServer) -> None:
    out = json.loads(crds.kubectl("get", "crd", "-l", "app.kubernetes.io/part-of=ferry",
                                  "-o", "json").stdout)
    names = {item["metadata"]["name"]: item for item in out["items"]}
    assert set(names) == {"clusters.ferry.dev", "snapshots.ferry.dev", "backfills.ferry.dev"}
    for crd in names.values():
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert established["Established"] == "True"
        assert established["NamesAccepted"] == "True"
        assert crd["spec"]["names"]["categories"] == ["ferry"]
    resources = crds.kubectl("api-resources", "--api-group=ferry.dev", "-o", "wide").stdout
    for short in ("fcl", "fsnap", "bf"):
        assert short in resources


def test_examples_are_accepted(crds: KubeAPIServer, namespace: str) -> None:
    out = crds.kubectl("apply", "-n", namespace, "-k", str(EXAMPLES))
    assert "cluster.ferry.dev/source created" in out.stdout
    assert "snapshot.ferry.dev/source-before-migration created" in out.stdout
    assert "backfill.ferry.dev/source-to-target created" in out.stdout
    listed = crds.kubectl("get", "ferry", "-n", namespace, "-o", "name").stdout.split()
    assert len(listed) == 4
    backfill = json.loads(crds.kubectl("get", "backfill", "source-to-target", "-n", namespace,
                                       "-o", "json").stdout)
    # Defaults come from the models through the CRD: nested objects are filled in.
    assert backfill["spec"]["executor"] == "inProcess"
    assert backfill["spec"]["throttle"] == {}
    assert backfill["spec"]["targetNaming"] == {"prefix": "", "suffix": ""}
    assert backfill["spec"]["verify"] == {"counts": True, "sampleSize": 100}


INVALID = [
    ("cluster-no-endpoint", _with(CLUSTER, endpoint=None), "spec.endpoint: Required value"),
    ("cluster-bad-scheme", _with(CLUSTER, endpoint="ftp://example.com"),
     "endpoint must be an http:// or https:// URL"),
    ("cluster-not-a-url", _with(CLUSTER, endpoint="elasticsearch:9200"),
     "endpoint must be an http:// or https:// URL"),
    ("cluster-credentials-in-url", _with(CLUSTER, endpoint="https://admin:pw@es.example:9200"),
     "endpoint must not embed credentials"),
    ("cluster-two-auth", _with(CLUSTER, auth={
        "basic": {"secretName": "s"}, "apiKey": {"secretRef": {"name": "s", "key": "k"}}}),
     "auth: set exactly one of basic, apiKey or sigv4"),
    ("cluster-basic-no-secret", _with(CLUSTER, auth={"basic": {"usernameKey": "u"}}),
     "spec.auth.basic.secretName: Required value"),
    ("cluster-two-ca", _with(CLUSTER, tls={"caSecretRef": {"name": "a", "key": "ca"},
                                           "caConfigMapRef": {"name": "b", "key": "ca"}}),
     "tls: set at most one of caSecretRef and caConfigMapRef"),
    ("cluster-sigv4-service", _with(CLUSTER, auth={"sigv4": {"region": "eu-west-1",
                                                             "service": "s3"}}),
     'spec.auth.sigv4.service: Unsupported value: "s3"'),
    ("cluster-interval-too-short", _with(CLUSTER, healthCheck={"intervalSeconds": 1}),
     "spec.healthCheck.intervalSeconds: Invalid value: 1"),
    ("snapshot-s3-without-bucket", _with(SNAPSHOT, repository={"name": "r", "type": "s3"}),
     "repository.s3 is required when type is s3"),
    ("snapshot-s3-empty", _with(SNAPSHOT, repository={"name": "r", "type": "s3", "s3": {}}),
     "spec.repository.s3.bucket: Required value"),
    ("snapshot-unknown-repo-type", _with(SNAPSHOT, repository={"name": "r", "type": "gcs"}),
     'spec.repository.type: Unsupported value: "gcs"'),
    ("snapshot-bad-policy", _with(SNAPSHOT, deletionPolicy="Destroy"),
     'spec.deletionPolicy: Unsupported value: "Destroy"'),
    ("snapshot-bad-name", _with(SNAPSHOT, snapshotName="Nightly Backup"),
     "spec.snapshotName: Invalid value"),
    ("snapshot-no-cluster", _with(SNAPSHOT, clusterRef=None),
     "spec.clusterRef: Required value"),
    ("backfill-negative-workers", _with(BACKFILL, workers=-1),
     "spec.workers: Invalid value: -1: spec.workers in body should be greater than or equal"),
    ("backfill-same-cluster", _with(BACKFILL, targetRef={"name": "src"}),
     "sourceRef and targetRef must name different Clusters"),
    ("backfill-restore-without-snapshot", _with(BACKFILL, method="restore"),
     "method restore needs source.snapshotRef"),
    ("backfill-copy-without-source", _with(BACKFILL, sourceRef=None),
     "sourceRef is required, unless method copy reads from source.snapshotRef"),
    ("backfill-restore-without-source", _with(BACKFILL, sourceRef=None, method="restore",
                                              source={"snapshotRef": {"name": "s"}}),
     "sourceRef is required, unless method copy reads from source.snapshotRef"),
    ("backfill-snapshot-copy-same-cluster", _with(
        BACKFILL, targetRef={"name": "src"}, source={"snapshotRef": {"name": "s"}}),
     "sourceRef and targetRef must name different Clusters"),
    ("backfill-zero-batch", _with(BACKFILL, batch={"maxDocs": 0}),
     "spec.batch.maxDocs: Invalid value: 0"),
    ("backfill-unknown-executor", _with(BACKFILL, executor="lambda"),
     'spec.executor: Unsupported value: "lambda"'),
    ("backfill-bad-conflict", _with(BACKFILL, onConflict="merge"),
     'spec.onConflict: Unsupported value: "merge"'),
    # Target names an engine would refuse at index creation are refused at apply time.
    ("backfill-uppercase-prefix", _with(BACKFILL, targetNaming={"prefix": "BAD-"}),
     'spec.targetNaming.prefix: Invalid value: "BAD-"'),
    ("backfill-prefix-leading-dash", _with(BACKFILL, targetNaming={"prefix": "-new"}),
     'spec.targetNaming.prefix: Invalid value: "-new"'),
    ("backfill-wildcard-suffix", _with(BACKFILL, targetNaming={"suffix": "*x"}),
     'spec.targetNaming.suffix: Invalid value: "*x"'),
]


@pytest.mark.parametrize(("obj", "message"), [(o, m) for _, o, m in INVALID],
                         ids=[i for i, _, _ in INVALID])
def test_invalid_manifest_is_rejected(crds: KubeAPIServer, namespace: str,
                                      obj: dict[str, Any], message: str) -> None:
    result = _apply(crds, namespace, obj)
    assert result.returncode != 0, f"accepted: {obj}"
    assert message in result.stderr, result.stderr
    assert crds.kubectl("get", obj["kind"].lower(), obj["metadata"]["name"], "-n", namespace,
                        check=False).returncode != 0


# -- bad input: one distinct rule each, the field named in the refusal -------------------

S3 = {"name": "r", "type": "s3", "s3": {"bucket": "snapshots"}}
BAD_INPUT = [
    # Cluster
    ("cluster-unknown-field", _with(CLUSTER, endpoints=["http://a:9200"]),
     'unknown field "spec.endpoints"'),
    ("cluster-ca-and-insecure", _with(CLUSTER, endpoint="https://es.example:9200", tls={
        "insecureSkipVerify": True, "caSecretRef": {"name": "ca", "key": "ca.crt"}}),
     "spec.tls: Invalid value: tls: insecureSkipVerify and a CA"),
    ("cluster-ca-with-http", _with(CLUSTER, tls={"caConfigMapRef": {"name": "ca",
                                                                    "key": "ca.crt"}}),
     "spec.tls: Invalid value: tls: a CA or a client certificate needs an https:// endpoint"),
    ("cluster-endpoint-query", _with(CLUSTER, endpoint="http://es.example:9200/?pretty"),
     'spec.endpoint: Invalid value: "http://es.example:9200/?pretty": endpoint must not '
     "carry a query"),
    ("cluster-timeout-zero", _with(CLUSTER, connection={"timeoutSeconds": 0}),
     "spec.connection.timeoutSeconds: Invalid value: 0"),
    ("cluster-retries-huge", _with(CLUSTER, connection={"maxRetries": 11}),
     "spec.connection.maxRetries: Invalid value: 11"),
    ("cluster-sigv4-bad-region", _with(CLUSTER, auth={"sigv4": {"region": "EU_WEST"}}),
     'spec.auth.sigv4.region: Invalid value: "EU_WEST"'),
    ("cluster-secret-name-not-dns", _with(CLUSTER, auth={"basic": {"secretName": "My_Creds"}}),
     'spec.auth.basic.secretName: Invalid value: "My_Creds"'),
    ("cluster-bad-data-key", _with(CLUSTER, auth={"basic": {"secretName": "creds",
                                                            "passwordKey": "pass word"}}),
     'spec.auth.basic.passwordKey: Invalid value: "pass word"'),
    # Snapshot
    ("snapshot-unknown-nested-field", _with(SNAPSHOT, repository={
        "name": "repo", "type": "fs", "fs": {"location": "/r", "compression": True}}),
     'unknown field "spec.repository.fs.compression"'),
    ("snapshot-s3-endpoint-without-scheme", _with(SNAPSHOT, repository={
        **S3, "s3": {"bucket": "snapshots", "endpoint": "minio.example:9000"}}),
     'spec.repository.s3.endpoint: Invalid value: "minio.example:9000": s3.endpoint must be '
     "an http:// or https:// URL"),
    ("snapshot-fs-relative-location", _with(SNAPSHOT, repository={
        "name": "repo", "type": "fs", "fs": {"location": "backups/nightly"}}),
     'spec.repository.fs.location: Invalid value: "backups/nightly": fs.location must be an '
     "absolute path"),
    ("snapshot-name-with-slash", _with(SNAPSHOT, snapshotName="nightly/2026-01-01"),
     'spec.snapshotName: Invalid value: "nightly/2026-01-01"'),
    ("snapshot-bad-repository-name", _with(SNAPSHOT, repository={
        "name": "_repo", "type": "fs", "fs": {"location": "/r"}}),
     'spec.repository.name: Invalid value: "_repo"'),
    ("snapshot-bad-bucket", _with(SNAPSHOT, repository={**S3, "s3": {"bucket": "My_Bucket"}}),
     'spec.repository.s3.bucket: Invalid value: "My_Bucket"'),
    ("snapshot-bad-s3-region", _with(SNAPSHOT, repository={
        **S3, "s3": {"bucket": "snapshots", "region": "Frankfurt"}}),
     'spec.repository.s3.region: Invalid value: "Frankfurt"'),
    ("snapshot-bad-role-arn", _with(SNAPSHOT, repository={
        **S3, "s3": {"bucket": "snapshots", "roleArn": "snapshots-role"}}),
     'spec.repository.s3.roleArn: Invalid value: "snapshots-role"'),
    ("snapshot-bad-throttle", _with(SNAPSHOT, repository={
        "name": "repo", "type": "fs", "fs": {"location": "/r"},
        "maxSnapshotBytesPerSec": "fast"}),
     'spec.repository.maxSnapshotBytesPerSec: Invalid value: "fast"'),
    ("snapshot-empty-index-pattern", _with(SNAPSHOT, indices=[""]),
     "spec.indices[0]: Invalid value: \"\""),
    # Backfill
    ("backfill-unknown-field", _with(BACKFILL, batch={"size": 500}),
     'unknown field "spec.batch.size"'),
    ("backfill-huge-batch-docs", _with(BACKFILL, batch={"maxDocs": 10_000_000}),
     "spec.batch.maxDocs: Invalid value: 10000000"),
    ("backfill-negative-batch-bytes", _with(BACKFILL, batch={"maxBytes": -1}),
     "spec.batch.maxBytes: Invalid value: -1"),
    ("backfill-huge-batch-bytes", _with(BACKFILL, batch={"maxBytes": 4 * 1024 ** 3}),
     f"spec.batch.maxBytes: Invalid value: {4 * 1024 ** 3}"),
    ("backfill-no-bulks-in-flight", _with(BACKFILL, batch={"bulksInFlight": 0}),
     "spec.batch.bulksInFlight: Invalid value: 0"),
    ("backfill-map-uppercase", _with(BACKFILL, targetNaming={"map": {"logs": "Logs-v2"}}),
     'spec.targetNaming.map.logs: Invalid value: "Logs-v2"'),
    ("backfill-map-wildcard", _with(BACKFILL, targetNaming={"map": {"logs": "logs-*"}}),
     'spec.targetNaming.map.logs: Invalid value: "logs-*"'),
    ("backfill-map-key-wildcard", _with(BACKFILL, targetNaming={"map": {"logs-*": "l2"}}),
     "targetNaming.map keys must be index names"),
    ("backfill-map-two-to-one", _with(BACKFILL, targetNaming={"map": {"a": "x", "b": "x"}}),
     "two source indices map to the same target index"),
    ("backfill-zero-throttle", _with(BACKFILL, throttle={"maxDocsPerSecond": 0}),
     "spec.throttle.maxDocsPerSecond: Invalid value: 0"),
    ("backfill-negative-sample", _with(BACKFILL, verify={"sampleSize": -1}),
     "spec.verify.sampleSize: Invalid value: -1"),
    ("backfill-too-many-workers", _with(BACKFILL, workers=65),
     "spec.workers: Invalid value: 65"),
    ("backfill-too-many-replicas", _with(BACKFILL, metadata={"targetReplicas": 33}),
     "spec.metadata.targetReplicas: Invalid value: 33"),
    ("backfill-unknown-metadata-mode", _with(BACKFILL, metadata={"mode": "Copy"}),
     'spec.metadata.mode: Unsupported value: "Copy"'),
    ("backfill-negative-failure-budget", _with(BACKFILL, maxFailedDocuments=-1),
     "spec.maxFailedDocuments: Invalid value: -1"),
    ("backfill-empty-index-pattern", _with(BACKFILL, indices=[""]),
     "spec.indices[0]: Invalid value: \"\""),
]


@pytest.fixture(scope="module")
def refusals_namespace(crds: KubeAPIServer) -> Iterator[str]:
    """One namespace for every refusal: nothing is ever created in it to clean up."""
    name = f"refused-{uuid.uuid4().hex[:8]}"
    crds.kubectl("create", "namespace", name)
    yield name
    crds.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize(("obj", "message"), [(o, m) for _, o, m in BAD_INPUT],
                         ids=[i for i, _, _ in BAD_INPUT])
def test_bad_input_is_rejected_naming_the_field(crds: KubeAPIServer, refusals_namespace: str,
                                               obj: dict[str, Any], message: str) -> None:
    test_invalid_manifest_is_rejected(crds, refusals_namespace, obj, message)


def test_at_least_40_distinct_refusals_and_no_unknown_fields_kept() -> None:
    ids = [i for i, _, _ in INVALID + BAD_INPUT]
    assert len(ids) == len(set(ids)) >= 40
    # Unknown fields are refused (strict field validation) only where the schema names
    # every field: nowhere may a CRD keep what it does not know.
    crd_text = "".join(p.read_text() for p in (EXAMPLES.parent / "crds").glob("*.yaml"))
    assert "x-kubernetes-preserve-unknown-fields" not in crd_text


IMMUTABLE = [
    (SNAPSHOT, {"indices": ["other-*"]}, "indices is immutable"),
    (SNAPSHOT, {"repository": {"name": "repo", "type": "fs", "fs": {"location": "/x"}}},
     "repository is immutable"),
    (SNAPSHOT, {"clusterRef": {"name": "c2"}}, "clusterRef is immutable"),
    (SNAPSHOT, {"snapshotName": "renamed"}, "snapshotName is immutable"),
    (BACKFILL, {"sourceRef": {"name": "other"}}, "sourceRef is immutable"),
    (BACKFILL, {"targetRef": {"name": "other"}}, "targetRef is immutable"),
]


@pytest.mark.parametrize(("base", "change", "message"), IMMUTABLE,
                         ids=[m.replace(" ", "-") for _, _, m in IMMUTABLE])
def test_immutable_fields(crds: KubeAPIServer, namespace: str, base: dict[str, Any],
                          change: dict[str, Any], message: str) -> None:
    assert _apply(crds, namespace, base).returncode == 0
    result = _apply(crds, namespace, _with(base, **change), verb="apply")
    assert result.returncode != 0, "an immutable field was changed"
    assert message in result.stderr, result.stderr


FROM_SNAPSHOT_FILES = _with(BACKFILL, sourceRef=None, source={"snapshotRef": {"name": "s"}})


def test_copy_from_snapshot_files_needs_no_source_and_keeps_that_choice(
        crds: KubeAPIServer, namespace: str) -> None:
    result = _apply(crds, namespace, FROM_SNAPSHOT_FILES)
    assert result.returncode == 0, result.stderr
    stored = json.loads(crds.kubectl("get", "backfill", "b1", "-n", namespace, "-o",
                                     "json").stdout)
    assert "sourceRef" not in stored["spec"]
    assert stored["spec"]["source"] == {"snapshotRef": {"name": "s"}}
    # Adding a source later is a change of source: refused like any other.
    result = _apply(crds, namespace, _with(FROM_SNAPSHOT_FILES, sourceRef={"name": "src"}),
                    verb="apply")
    assert result.returncode != 0 and "sourceRef is immutable" in result.stderr
    # And a Backfill with a source cannot drop it.
    with_source = {**_with(BACKFILL, source={"snapshotRef": {"name": "s"}}),
                   "metadata": {"name": "b2"}}
    assert _apply(crds, namespace, with_source).returncode == 0
    result = _apply(crds, namespace, {**FROM_SNAPSHOT_FILES, "metadata": {"name": "b2"}},
                    verb="replace")
    assert result.returncode != 0 and "sourceRef is immutable" in result.stderr


def test_mutable_fields_can_change(crds: KubeAPIServer, namespace: str) -> None:
    assert _apply(crds, namespace, BACKFILL).returncode == 0
    changed = _with(BACKFILL, paused=True, workers=5, indices=["a-*"])
    result = _apply(crds, namespace, changed, verb="apply")
    assert result.returncode == 0, result.stderr


def test_kubectl_explain_shows_field_descriptions(crds: KubeAPIServer) -> None:
    out = crds.kubectl("explain", "backfills.spec.workers").stdout
    assert "Parallel workers" in out
    out = crds.kubectl("explain", "clusters.spec.auth").stdout
    assert "Set exactly one method" in out
    assert "sigv4" in out
    out = crds.kubectl("explain", "snapshots.status.progress.percent").stdout
    assert "Percent done" in out


@pytest.fixture
def quiet_namespace(quiet_kube: KubeAPIServer) -> str:
    """A namespace on the API server no operator watches: a test that writes status
    itself there is its only writer (the session operator would write over it, at a
    moment of its choosing)."""
    name = f"quiet-{uuid.uuid4().hex[:8]}"
    quiet_kube.kubectl("create", "namespace", name)
    return name


def test_scale_subresource_sets_workers(quiet_kube: KubeAPIServer,
                                        quiet_namespace: str) -> None:
    crds, namespace = quiet_kube, quiet_namespace
    assert _apply(crds, namespace, BACKFILL).returncode == 0
    crds.kubectl("scale", "-n", namespace, "backfill/b1", "--replicas=3")
    obj = json.loads(crds.kubectl("get", "-n", namespace, "backfill", "b1", "-o",
                                  "json").stdout)
    assert obj["spec"]["workers"] == 3
    # What an HPA or KEDA reads: replicas and the worker pods' selector.
    selector = "app.kubernetes.io/name=ferry-worker,ferry.dev/backfill=b1"
    _status(crds, namespace, "backfill", "b1", {"workers": 2, "selector": selector})
    scale = json.loads(crds.kubectl(
        "get", "--raw",
        f"/apis/ferry.dev/v1alpha1/namespaces/{namespace}/backfills/b1/scale").stdout)
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 3
    assert scale["status"] == {"replicas": 2, "selector": selector}


def _status(kube: KubeAPIServer, ns: str, kind: str, name: str,
            status: dict[str, Any]) -> None:
    from ferry.api import KINDS

    # HAND-MADE: validated against the model the CRD is generated from.
    next(k for k in KINDS if k.kind.lower() == kind).status.model_validate(status)
    kube.kubectl("patch", "-n", ns, kind, name, "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": status}))


def _table(kube: KubeAPIServer, ns: str, kind: str, *flags: str) -> dict[str, str]:
    """`kubectl get` of one object (the API server prints it): header -> cell."""
    lines = kube.kubectl("get", "-n", ns, kind, *flags).stdout.splitlines()
    assert len(lines) == 2, lines
    # Cells by the header's column positions: an empty cell is blank.
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    ends = [*starts[1:], None]
    return {lines[0][a:b].strip(): lines[1][a:b].strip()
            for a, b in zip(starts, ends, strict=True)}


def _condition(type_: str, status: str) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": "Copying", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}


def test_printer_columns_show_text_and_conditions(quiet_kube: KubeAPIServer,
                                                  quiet_namespace: str) -> None:
    crds, namespace = quiet_kube, quiet_namespace
    for obj in (CLUSTER, SNAPSHOT, BACKFILL):
        assert _apply(crds, namespace, obj).returncode == 0
    _status(crds, namespace, "backfill", "b1", {
        "phase": "Running", "workers": 2,
        "progress": {"percent": 42.5, "completion": "42.5%", "docsMigrated": 425000,
                     "docsPerSecond": 1234.5, "rate": "1.2k/s", "etaSeconds": 3720,
                     "eta": "1h02m"},
        "conditions": [_condition("Ready", "False"), _condition("Verified", "Unknown")]})
    wide = _table(crds, namespace, "backfill", "b1", "-o", "wide")
    age = wide.pop("AGE")
    assert wide == {"NAME": "b1", "SOURCE": "src", "TARGET": "dst", "PHASE": "Running",
                    "READY": "False", "PROGRESS": "42.5%", "DOCS": "425000",
                    "RATE": "1.2k/s", "ETA": "1h02m", "VERIFIED": "Unknown", "WORKERS": "2"}
    assert age.endswith("s")
    default = _table(crds, namespace, "backfill", "b1")
    assert list(default) == ["NAME", "SOURCE", "TARGET", "PHASE", "READY", "PROGRESS",
                             "DOCS", "RATE", "ETA", "AGE"]
    _status(crds, namespace, "snapshot", "s1", {
        "phase": "InProgress",
        "progress": {"percent": 40.0, "completion": "40%", "bytesTotal": 1288490189,
                     "size": "1.2GiB", "etaSeconds": 75, "eta": "1m15s"},
        "conditions": [_condition("Ready", "False")]})
    snapshot = _table(crds, namespace, "snapshot", "s1")
    assert (snapshot["READY"], snapshot["PROGRESS"], snapshot["SIZE"], snapshot["ETA"]) == (
        "False", "40%", "1.2GiB", "1m15s")
    _status(crds, namespace, "cluster", "c1", {
        "phase": "Ready", "conditions": [_condition("Ready", "True")]})
    cluster = _table(crds, namespace, "cluster", "c1")
    assert (cluster["ENGINE"], cluster["PHASE"], cluster["READY"]) == ("", "Ready", "True")


def test_status_subresource(quiet_kube: KubeAPIServer, quiet_namespace: str) -> None:
    crds, namespace = quiet_kube, quiet_namespace
    assert _apply(crds, namespace, CLUSTER).returncode == 0
    before = json.loads(crds.kubectl("get", "-n", namespace, "cluster", "c1", "-o",
                                     "json").stdout)
    status = {"status": {"phase": "Ready", "engine": "opensearch", "version": "2.19.3",
                         "health": "green", "observedGeneration": 1,
                         "conditions": [{"type": "Ready", "status": "True",
                                         "reason": "Healthy", "message": "",
                                         "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}
    crds.kubectl("patch", "-n", namespace, "cluster", "c1", "--subresource=status",
                 "--type=merge", "-p", json.dumps(status))
    after = json.loads(crds.kubectl("get", "-n", namespace, "cluster", "c1", "-o",
                                    "json").stdout)
    assert after["status"]["phase"] == "Ready"
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    # Status written through the main resource is ignored by the server.
    crds.kubectl("patch", "-n", namespace, "cluster", "c1", "--type=merge",
                 "-p", json.dumps({"status": {"phase": "Invalid"}}))
    again = json.loads(crds.kubectl("get", "-n", namespace, "cluster", "c1", "-o",
                                    "json").stdout)
    assert again["status"]["phase"] == "Ready"
    # Printer columns read the status.
    table = crds.kubectl("get", "-n", namespace, "clusters").stdout
    assert table.split("\n")[0].split()[:5] == ["NAME", "ENGINE", "VERSION", "HEALTH", "PHASE"]
    assert "opensearch" in table and "green" in table


# What shapes a Backfill's plan, each with a value other than BACKFILL_PLANNED's.
PLAN_CHANGES = {
    "indices": ["logs-*"],
    "closedIndices": "Skip",
    "targetNaming": {"prefix": "new-"},
    "metadata": {"mode": "Evaluate"},
    "method": "restore",
    "source": {"snapshotRef": {"name": "other"}},
    "restore": {"includeAliases": False},
}
BACKFILL_PLANNED = _with(BACKFILL, source={"snapshotRef": {"name": "s"}})


def test_plan_fields_change_until_the_backfill_started_then_are_refused(
        quiet_kube: KubeAPIServer, quiet_namespace: str) -> None:
    """The stored status decides: unset, Pending and Evaluated take a change of what
    shapes the plan (the operator plans again); from Planning on the API server refuses
    it, naming each field, while other fields (paused) still change."""
    kube, ns = quiet_kube, quiet_namespace
    changed = _with(BACKFILL_PLANNED, **PLAN_CHANGES)

    def stored() -> dict[str, Any]:
        spec = json.loads(kube.kubectl("get", "-n", ns, "backfill", "b1", "-o",
                                       "json").stdout)["spec"]
        return {field: spec.get(field) for field in PLAN_CHANGES}

    assert _apply(kube, ns, BACKFILL_PLANNED).returncode == 0
    default = stored()
    # `replace` sends the whole spec: a field left out is removed (or defaulted) too.
    assert _apply(kube, ns, changed, verb="replace").returncode == 0
    new = stored()
    assert all(new[f] != default[f] for f in PLAN_CHANGES), (new, default)
    for phase, manifest, want in (("Pending", BACKFILL_PLANNED, default),
                                  ("Evaluated", changed, new)):
        _status(kube, ns, "backfill", "b1", {"phase": phase})
        result = _apply(kube, ns, manifest, verb="replace")
        assert result.returncode == 0, (phase, result.stderr)
        assert stored() == want, phase
    for phase in ("MigratingMetadata", "Running", "Failed"):
        _status(kube, ns, "backfill", "b1", {"phase": phase})
        result = _apply(kube, ns, BACKFILL_PLANNED, verb="replace")
        assert result.returncode != 0, f"the plan changed in phase {phase}"
        for field in PLAN_CHANGES:
            assert f"spec.{field}: Forbidden: spec.{field} cannot change once the " \
                "Backfill has started" in result.stderr, (field, result.stderr)
        assert "delete and re-create" in result.stderr
        assert stored() == new
    # Only the plan is fixed: a control such as paused still changes mid-run.
    result = _apply(kube, ns, {**changed, "spec": {**changed["spec"], "paused": True}},
                    verb="replace")
    assert result.returncode == 0, result.stderr
    assert json.loads(kube.kubectl("get", "-n", ns, "backfill", "b1", "-o", "json")
                      .stdout)["spec"]["paused"] is True


def test_status_is_validated(crds: KubeAPIServer, namespace: str) -> None:
    assert _apply(crds, namespace, CLUSTER).returncode == 0
    result = crds.kubectl("patch", "-n", namespace, "cluster", "c1", "--subresource=status",
                          "--type=merge", "-p", json.dumps({"status": {"phase": "Happy"}}),
                          check=False)
    assert result.returncode != 0
    assert 'status.phase: Unsupported value: "Happy"' in result.stderr


def test_examples_parse_through_the_models() -> None:
    from ferry.api import KINDS

    by_kind = {k.kind: k for k in KINDS}
    seen = set()
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["apiVersion"].startswith("ferry.dev/"):
                by_kind[doc["kind"]].spec.model_validate(doc["spec"])
                seen.add(doc["kind"])
    assert seen == set(by_kind)
