"""Cluster end to end: `ferry run` against the real API server and real search nodes,
with test-only proxies for auth, TLS and SigV4 that the bare nodes lack."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.pki import CertificateAuthority
from testbed.procs import free_port
from testbed.proxy import Refusal, Request, ReverseProxy, basic_auth_gate, sigv4_gate
from testbed.search import SearchNode

if TYPE_CHECKING:
    from conftest import SecretValues

pytestmark = pytest.mark.integration

def cluster(name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name}, "spec": {"endpoint": endpoint, **spec}}


def secret(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": data}


def ready_reason(obj: dict[str, Any]) -> str:
    return next(c["reason"] for c in obj["status"]["conditions"] if c["type"] == "Ready")


def healthy_reason(node: SearchNode) -> str:
    """The Ready reason a correct operator gives this node right now: the shared nodes
    can be yellow when an earlier test left an index with a replica."""
    health = node.request("GET", "/_cluster/health")["status"]  # type: ignore[index]
    return "Healthy" if health == "green" else "HealthYellow"


def phase_is(phase: str, reason: str | None = None):
    def check(obj: dict[str, Any]) -> bool:
        return obj["status"]["phase"] == phase and (reason is None or
                                                    ready_reason(obj) == reason)
    return check


@pytest.mark.parametrize("fixture", ["opensearch", "elasticsearch"])
def test_cluster_becomes_ready_with_the_nodes_figures(
        request: pytest.FixtureRequest, fixture: str, kube: KubeAPIServer,
        operator: OperatorProcess, namespace: str) -> None:
    node: SearchNode = request.getfixturevalue(fixture)
    index = f"figures-{uuid.uuid4().hex[:6]}"
    node.request("PUT", f"/{index}", {"settings": {"number_of_shards": 2,
                                                   "number_of_replicas": 0}})
    bulk = "".join(f'{{"index":{{"_id":"{i}"}}}}\n{{"n":{i}}}\n' for i in range(25))
    node.request("POST", f"/{index}/_bulk?refresh=true", bulk.encode())
    node.request("PUT", f"/.hidden-{index}", {"settings": {"number_of_replicas": 0}})
    kube.apply(namespace, cluster("node", node.url))
    obj = kube.wait_for("cluster", namespace, "node", phase_is("Ready"), timeout=60)
    status = obj["status"]
    health = node.request("GET", "/_cluster/health")
    rows = node.request("GET", "/_cat/indices?format=json&bytes=b&expand_wildcards=all")
    user = [r for r in rows if not r["index"].startswith(".")]  # type: ignore[union-attr]
    system = [r for r in rows if r["index"].startswith(".")]  # type: ignore[union-attr]
    assert status["engine"] == fixture
    assert status["version"] == node.number
    assert status["health"] == health["status"]  # type: ignore[index]
    assert status["clusterName"] == health["cluster_name"]  # type: ignore[index]
    assert status["nodes"] == status["dataNodes"] == 1
    assert status["activeShards"] == health["active_shards"]  # type: ignore[index]
    assert status["unassignedShards"] == health["unassigned_shards"]  # type: ignore[index]
    assert status["indices"]["count"] == len(user)
    assert status["indices"]["documents"] == sum(int(r["docs.count"]) for r in user)
    assert status["indices"]["documents"] >= 25
    assert status["systemIndices"]["count"] == len(system) >= 1
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert ready_reason(obj) == healthy_reason(node)
    assert status["readOnly"] is False
    table = kube.kubectl("get", "clusters", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "ENGINE", "VERSION", "HEALTH", "PHASE", "READY", "AGE"]
    assert table[1].split()[:6] == ["node", fixture, node.number, health["status"], "Ready",  # type: ignore[index]
                                    "True"]
    events = kube.events(namespace, "node")
    assert [(e["type"], e["reason"]) for e in events] == [("Normal", healthy_reason(node))]
    node.request("DELETE", f"/{index},.hidden-{index}")


def test_unreachable_then_ready_without_restart(kube: KubeAPIServer, operator: OperatorProcess,
                                                opensearch: SearchNode, namespace: str,
                                                proxies: list[ReverseProxy]) -> None:
    port = free_port()
    kube.apply(namespace, cluster("later", f"http://127.0.0.1:{port}",
                                  healthCheck={"intervalSeconds": 10},
                                  connection={"timeoutSeconds": 2, "maxRetries": 0}))
    obj = kube.wait_for("cluster", namespace, "later",
                        phase_is("Unreachable", "ConnectionRefused"), timeout=60)
    assert f"127.0.0.1:{port}" in obj["status"]["message"]
    assert "refused" in obj["status"]["message"]
    starts = operator.starts
    proxies.append(ReverseProxy(opensearch.url, port=port).start())
    kube.wait_for("cluster", namespace, "later", phase_is("Ready"), timeout=60)
    assert operator.starts == starts and operator.proc and operator.proc.running
    reasons = [e["reason"] for e in kube.events(namespace, "later")]
    # One event per transition; the API does not promise their order within a second.
    assert sorted(reasons) == sorted(["ConnectionRefused", healthy_reason(opensearch)])


def test_dns_failure_is_named(kube: KubeAPIServer, operator: OperatorProcess,
                              namespace: str) -> None:
    kube.apply(namespace, cluster("nowhere", "http://no-such-host.invalid:9200",
                                  connection={"timeoutSeconds": 3, "maxRetries": 0}))
    kube.wait_for("cluster", namespace, "nowhere", phase_is("Unreachable", "DNSFailure"),
                  timeout=60)


def test_missing_secret_heals_when_created(quiet_kube: KubeAPIServer, opensearch: SearchNode,
                                           proxies: list[ReverseProxy],
                                           secret_values: SecretValues,
                                           tmp_path: Path) -> None:
    password = secret_values.new("pw")
    proxy = ReverseProxy(opensearch.url, gate=basic_auth_gate({"ferry": password})).start()
    proxies.append(proxy)
    # An operator of its own (on the API server the session operator does not watch)
    # that retries a failed check after an hour, as it checks a healthy one: only the
    # Secret watch can heal the Cluster within the test.
    namespace = f"heal-{uuid.uuid4().hex[:8]}"
    quiet_kube.kubectl("create", "namespace", namespace)
    own = OperatorProcess(quiet_kube.kubeconfig, args=("--namespace", namespace),
                          env={"FERRY_RETRY_SECONDS": "3600"},
                          workdir=tmp_path / "operator").start()
    try:
        quiet_kube.apply(namespace, cluster("auth", proxy.url,
                                            healthCheck={"intervalSeconds": 3600},
                                            auth={"basic": {"secretName": "creds"}}))
        obj = quiet_kube.wait_for("cluster", namespace, "auth",
                                  phase_is("Invalid", "SecretNotFound"))
        assert f"Secret {namespace}/creds not found" in obj["status"]["message"]
        quiet_kube.apply(namespace, secret("creds", username="ferry", password=password))
        quiet_kube.wait_for("cluster", namespace, "auth", phase_is("Ready"), timeout=30)
    finally:
        own.stop()


def test_basic_auth_right_wrong_and_rotated(kube: KubeAPIServer, operator: OperatorProcess,
                                            opensearch: SearchNode, namespace: str,
                                            proxies: list[ReverseProxy],
                                            secret_values: SecretValues) -> None:
    good, bad, rotated = (secret_values.new(p) for p in ("good", "bad", "rotated"))
    accepted = {"admin": good}
    proxy = ReverseProxy(opensearch.url, gate=basic_auth_gate(accepted)).start()
    proxies.append(proxy)
    kube.apply(namespace,
               secret("creds", user="admin", pass_=good),
               cluster("auth", proxy.url, healthCheck={"intervalSeconds": 60},
                       auth={"basic": {"secretName": "creds", "usernameKey": "user",
                                       "passwordKey": "pass_"}}))
    kube.wait_for("cluster", namespace, "auth", phase_is("Ready"), timeout=30)

    kube.apply(namespace, secret("creds", user="admin", pass_=bad))
    obj = kube.wait_for("cluster", namespace, "auth",
                        phase_is("AuthenticationFailed", "AuthenticationFailed"), timeout=30)
    assert "401" in obj["status"]["message"]
    # Not retried in a hot loop: a wrong password is tried again only at the interval.
    seen = len(proxy.seen)
    time.sleep(8)
    assert len(proxy.seen) - seen <= 1

    accepted["admin"] = rotated
    kube.apply(namespace, secret("creds", user="admin", pass_=rotated))
    kube.wait_for("cluster", namespace, "auth", phase_is("Ready"), timeout=30)


def test_api_key_auth(kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
                      namespace: str, proxies: list[ReverseProxy],
                      secret_values: SecretValues) -> None:
    key = base64.b64encode(secret_values.new("id:key").encode()).decode()
    secret_values.add(key)

    def gate(request: Request) -> Refusal | None:
        return None if request.header("Authorization") == f"ApiKey {key}" else \
            Refusal(401)

    proxy = ReverseProxy(opensearch.url, gate=gate).start()
    proxies.append(proxy)
    kube.apply(namespace, secret("api", encoded=key),
               cluster("keyed", proxy.url,
                       auth={"apiKey": {"secretRef": {"name": "api", "key": "encoded"}}}))
    kube.wait_for("cluster", namespace, "keyed", phase_is("Ready"), timeout=30)


@pytest.fixture(scope="module")
def tls_ca(tmp_path_factory: pytest.TempPathFactory,
           secret_values: SecretValues) -> dict[str, Any]:
    ca = CertificateAuthority("ferry-test-proxy-ca")
    out = tmp_path_factory.mktemp("tls")
    server = ca.issue("proxy", hosts=("127.0.0.1", "localhost")).write(out, "server")
    client = ca.issue("ferry", client=True)
    (out / "ca.crt").write_bytes(ca.cert_pem)
    secret_values.add(client.key_pem.decode().splitlines()[1])
    return {"ca": ca, "server": server, "client": client, "ca_file": out / "ca.crt"}


def test_tls_needs_the_ca(kube: KubeAPIServer, operator: OperatorProcess,
                          opensearch: SearchNode, namespace: str,
                          proxies: list[ReverseProxy], tls_ca: dict[str, Any]) -> None:
    proxy = ReverseProxy(opensearch.url, tls=tls_ca["server"]).start()
    proxies.append(proxy)
    ca_pem = tls_ca["ca"].cert_pem.decode()
    kube.apply(namespace,
               cluster("no-ca", proxy.url, connection={"maxRetries": 0}),
               secret("ca", **{"ca.crt": ca_pem}),
               cluster("ca-secret", proxy.url, tls={"caSecretRef": {"name": "ca",
                                                                    "key": "ca.crt"}}),
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ca"},
                "data": {"bundle.pem": ca_pem}},
               cluster("ca-configmap", proxy.url,
                       tls={"caConfigMapRef": {"name": "ca", "key": "bundle.pem"}}),
               cluster("insecure", proxy.url, tls={"insecureSkipVerify": True}))
    obj = kube.wait_for("cluster", namespace, "no-ca", phase_is("Unreachable", "TLSError"))
    assert "certificate verify failed" in obj["status"]["message"]
    for name in ("ca-secret", "ca-configmap"):
        obj = kube.wait_for("cluster", namespace, name, phase_is("Ready"))
        assert not any(c["type"] == "InsecureTLS" for c in obj["status"]["conditions"])
    obj = kube.wait_for("cluster", namespace, "insecure", phase_is("Ready"))
    insecure = next(c for c in obj["status"]["conditions"] if c["type"] == "InsecureTLS")
    assert insecure["status"] == "True" and insecure["reason"] == "InsecureSkipVerify"
    warnings = [e for e in kube.events(namespace, "insecure") if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["InsecureSkipVerify"]


def test_mutual_tls(kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
                    namespace: str, proxies: list[ReverseProxy],
                    tls_ca: dict[str, Any]) -> None:
    proxy = ReverseProxy(opensearch.url, tls=tls_ca["server"],
                         client_ca=tls_ca["ca_file"]).start()
    proxies.append(proxy)
    client = tls_ca["client"]
    ca_ref = {"caSecretRef": {"name": "ca", "key": "ca.crt"}}
    kube.apply(namespace,
               secret("ca", **{"ca.crt": tls_ca["ca"].cert_pem.decode()}),
               {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "client"},
                "type": "kubernetes.io/tls",
                "stringData": {"tls.crt": client.cert_pem.decode(),
                               "tls.key": client.key_pem.decode()}},
               cluster("without-cert", proxy.url, tls=ca_ref, connection={"maxRetries": 0}),
               cluster("with-cert", proxy.url,
                       tls={**ca_ref, "clientCertificate": {"secretName": "client"}}))
    kube.wait_for("cluster", namespace, "with-cert", phase_is("Ready"))
    kube.wait_for("cluster", namespace, "without-cert",
                  lambda o: o["status"]["phase"] == "Unreachable")


def test_sigv4_requests_carry_a_valid_signature(kube: KubeAPIServer, operator: OperatorProcess,
                                                opensearch: SearchNode, namespace: str,
                                                proxies: list[ReverseProxy],
                                            secret_values: SecretValues) -> None:
    access, secret_key = "AKIAFERRYTEST", secret_values.new("aws-secret")
    verdicts: list[bool] = []
    proxy = ReverseProxy(opensearch.url, gate=sigv4_gate(access, secret_key, "eu-west-1", "es",
                                                         verdicts)).start()
    proxies.append(proxy)
    kube.apply(namespace,
               secret("aws", AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret_key),
               cluster("signed", proxy.url,
                       auth={"sigv4": {"region": "eu-west-1", "credentialsSecretName": "aws"}}))
    kube.wait_for("cluster", namespace, "signed", phase_is("Ready"))
    assert len(verdicts) >= 3 and all(verdicts)

    wrong = secret_values.new("wrong-aws-secret")
    kube.apply(namespace, secret("aws", AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=wrong))
    kube.wait_for("cluster", namespace, "signed", phase_is("AuthenticationFailed"))
    assert verdicts[-1] is False


def test_read_only_shown_and_spec_change_rechecks(kube: KubeAPIServer,
                                                  operator: OperatorProcess,
                                                  opensearch: SearchNode,
                                                  namespace: str) -> None:
    kube.apply(namespace, cluster("src", opensearch.url, readOnly=True,
                                  healthCheck={"intervalSeconds": 3600}))
    obj = kube.wait_for("cluster", namespace, "src", phase_is("Ready"))
    assert obj["status"]["readOnly"] is True
    kube.apply(namespace, cluster("src", "http://127.0.0.1:1", readOnly=True,
                                  healthCheck={"intervalSeconds": 3600},
                                  connection={"maxRetries": 0}))
    obj = kube.wait_for("cluster", namespace, "src", phase_is("Unreachable"), timeout=30)
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 2
    # What was last observed stays visible while unreachable.
    assert obj["status"]["version"] == opensearch.number
    assert "health" not in obj["status"]


def test_steady_cluster_writes_no_status_and_posts_no_events(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        namespace: str, proxies: list[ReverseProxy]) -> None:
    proxy = ReverseProxy(opensearch.url).start()
    proxies.append(proxy)
    kube.apply(namespace, cluster("steady", proxy.url, healthCheck={"intervalSeconds": 10}))
    first = kube.wait_for("cluster", namespace, "steady", phase_is("Ready"))
    checks = sum(1 for r in proxy.seen if r.path.startswith("/_cluster/health"))
    time.sleep(25)
    later = kube.get("cluster", namespace, "steady")
    assert later is not None
    assert sum(1 for r in proxy.seen if r.path.startswith("/_cluster/health")) - checks >= 2
    # Not one status write: every write carries a new lastCheckedTime. (The object's
    # resourceVersion is no witness: kopf's own annotations may land after "first".)
    assert later["status"] == first["status"]
    assert [e["reason"] for e in kube.events(namespace, "steady")] == [
        healthy_reason(opensearch)]


def test_operator_shuts_down_cleanly_on_sigterm(crds: KubeAPIServer, namespace: str) -> None:
    # Restricted to an empty namespace so it does not compete with the session operator.
    proc = OperatorProcess(crds.kubeconfig, args=("--namespace", namespace)).start()
    assert proc.healthy()
    code = proc.stop()
    assert code == 0, proc.logs()[-2000:]
    lines = [json.loads(line) for line in proc.logs().splitlines() if line.startswith("{")]
    assert lines, "logs are JSON"
    assert any("starting Ferry operator" in line.get("message", "") for line in lines)
