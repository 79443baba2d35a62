"""Session fixtures that start the real parts of the test bed.

Each part starts on first use and stops at the end of the session. A missing part is
an error, never a skip: a green run means every test talked to the real thing.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import ferry
from testbed import procs
from testbed.kube import KubeAPIServer
from testbed.matrix import NodePool
from testbed.operator import OperatorProcess
from testbed.proxy import ReverseProxy
from testbed.results import MatrixResults, Node
from testbed.s3 import S3Server
from testbed.search import SearchNode, java_major_for

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "crds"

# name -> version of each real part this session started, for the closing summary.
_STARTED: dict[str, str] = {}


# module -> seconds spent in its tests (setup, call, teardown), for the closing summary.
_MODULE_SECONDS: dict[str, float] = {}


# Cells of the compatibility table the tests of this run proved (or failed to).
_MATRIX = MatrixResults()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::")[0]
    _MODULE_SECONDS[module] = _MODULE_SECONDS.get(module, 0.0) + report.duration
    _MATRIX.report(report.nodeid, report.passed, report.skipped)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _MATRIX.write()


# The version-matrix tests in the order that starts each pool node about once (the pool
# keeps two nodes besides the pinned session pair, least recently used out first): by
# node, across modules — the parametrized Cluster and snapshot cases of one version
# beside the module that needs the same node. A module whose module-scoped fixture
# holds a node stays in one piece. Everything else keeps pytest's order, before these.
NODE_ORDER = (
    r"test_matrix_nodes.py::.*\[elasticsearch-5\.6", r"test_snapshot_matrix.py::.*\[es-5\.6",
    r"test_matrix_es5.py::",
    r"test_matrix_nodes.py::.*\[elasticsearch-6\.8", r"test_snapshot_matrix.py::.*\[es-6\.8",
    r"test_matrix_nodes.py::.*\[opensearch-3\.", r"test_matrix_es6.py::",
    r"test_matrix_nodes.py::.*\[opensearch-1\.3", r"test_matrix_nodes.py::test_opensearch_compat",
    r"test_snapshot_matrix.py::.*\[os-1\.3",
    r"test_matrix_nodes.py::.*\[elasticsearch-8\.", r"test_matrix_nodes.py::test_es8_",
    r"test_snapshot_matrix.py::.*\[es-8\.", r"test_snapshot_reader.py::", r"test_matrix_copy.py::",
    r"test_matrix_nodes.py::", r"test_snapshot_matrix.py::",
)


def node_rank(nodeid: str) -> int:
    """0 for a test outside the matrix; else 1 + the first NODE_ORDER pattern it matches."""
    return next((i + 1 for i, pattern in enumerate(NODE_ORDER) if re.search(pattern, nodeid)),
                0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: node_rank(item.nodeid))  # stable: pytest's order within


@pytest.fixture
def matrix_case(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``matrix_case(method, source_node, target_node=None)``: this test proves that
    cell of the compatibility table (docs/compatibility.md) if it passes."""
    def record(method: str, source: Node, target: Node | None = None) -> None:
        _MATRIX.case(request.node.nodeid, method, source, target)
    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _MODULE_SECONDS:
        terminalreporter.section("time per test module")
        for module, seconds in sorted(_MODULE_SECONDS.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{seconds:8.1f}s  {module}")
    if _STARTED:
        terminalreporter.section("real parts of the test bed")
        for name, version in _STARTED.items():
            terminalreporter.write_line(f"{name}: {version}")


# What the session API server's audit log keeps: the body of every status write and
# every Event, the places a leaked secret would land (never the Secrets themselves).
LEAK_AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "resources": [{"group": "", "resources": ["secrets"]}]},
        {"level": "Request", "verbs": ["create", "update", "patch"], "resources": [
            {"group": "ferry.dev", "resources": ["clusters/status", "snapshots/status",
                                                 "backfills/status"]},
            {"group": "", "resources": ["events"]},
            {"group": "events.k8s.io", "resources": ["events"]}]},
        {"level": "None"},
    ],
}


class SecretValues:
    """Every secret value a test hands the operator (``secret_values`` fixture): none may
    appear in a status, an Event or a Ferry log of the whole run."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def new(self, prefix: str) -> str:
        value = f"{prefix}-{uuid.uuid4().hex}"
        self.values.add(value)
        return value

    def add(self, *values: str) -> None:
        self.values.update(v for v in values if v)

    def secret(self, name: str, **data: str) -> dict:
        """A Secret manifest (stringData) whose values are all registered."""
        self.add(*data.values())
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                "stringData": data}


_SECRETS = SecretValues()


@pytest.fixture(scope="session")
def secret_values() -> SecretValues:
    return _SECRETS


def _leaks(texts: dict[str, str]) -> list[str]:
    return [f"a secret value ({value[:6]}...) appears in {where}"
            for where, text in texts.items() for value in sorted(_SECRETS.values)
            if value in text]


def _server_texts(server: KubeAPIServer, audit_log: Path | None) -> dict[str, str]:
    kinds = "clusters.ferry.dev,snapshots.ferry.dev,backfills.ferry.dev"
    # check=False: a run that never installed the CRDs has no Ferry kinds to list.
    texts = {f"{server.url} statuses": server.kubectl("get", kinds, "-A", "-o", "json",
                                                      check=False).stdout,
             f"{server.url} events": server.kubectl("get", "events", "-A", "-o",
                                                    "json").stdout}
    if audit_log is not None and audit_log.exists():
        texts[f"{server.url} status writes and events (audit log)"] = audit_log.read_text()
    return texts


def _ferry_logs() -> dict[str, str]:
    """Every Ferry process's log of this run (operators, and what tests recorded)."""
    return {str(log): log.read_text(errors="replace") for name, log in procs.LOGS
            if name.startswith("ferry") and log.exists()}


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeAPIServer]:
    audit_dir = Path(tempfile.mkdtemp(prefix="ferry-audit-"))
    (audit_dir / "policy.yaml").write_text(yaml.safe_dump(LEAK_AUDIT_POLICY))
    audit_log = audit_dir / "audit.log"
    server = KubeAPIServer(extra_args=(f"--audit-policy-file={audit_dir / 'policy.yaml'}",
                                       f"--audit-log-path={audit_log}")).start()
    etcd_version = server.version and _etcd_version()
    _STARTED["kube-apiserver"] = server.version
    _STARTED["etcd"] = etcd_version
    _STARTED["kubectl"] = server.kubectl("version", "--client", "-o", "json").stdout.split(
        '"gitVersion": "')[1].split('"')[0]
    try:
        yield server
        # The operator fixture (which needs this server) is torn down by now: its log
        # is complete.
        leaks = _leaks({**_server_texts(server, audit_log), **_ferry_logs()})
        assert not leaks, leaks
    finally:
        server.stop()


@pytest.fixture(scope="session")
def quiet_kube() -> Iterator[KubeAPIServer]:
    """A second API server with the CRDs that no session operator watches: for a test
    that must be the only writer of its objects, or that runs an operator of its own
    with settings the session operator must not have."""
    server = KubeAPIServer().start()
    try:
        server.kubectl("apply", "--server-side", "-f", str(CRDS))
        server.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "-l",
                       "app.kubernetes.io/part-of=ferry")
        yield server
        leaks = _leaks(_server_texts(server, None))
        assert not leaks, leaks
    finally:
        server.stop()


def _etcd_version() -> str:
    from testbed.paths import BIN

    out = subprocess.run([str(BIN / "etcd"), "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split(":", 1)[1].strip() if out else "unknown"


@pytest.fixture(scope="session")
def crds(kube: KubeAPIServer) -> KubeAPIServer:
    """The generated CRDs, installed and Established."""
    kube.kubectl("apply", "--server-side", "-f", str(CRDS))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "-l",
                 "app.kubernetes.io/part-of=ferry")
    return kube


@pytest.fixture
def namespace(kube: KubeAPIServer, proxies: list[ReverseProxy]) -> Iterator[str]:
    """A fresh namespace. It depends on ``proxies`` so that a test's proxies outlive
    its resources: deleting a Backfill reaches its target through them."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.drop_namespace(name)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    server = S3Server().start()
    _STARTED["moto (S3)"] = server.version
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def shared_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dir in path.repo of both session nodes: a snapshot one of them writes to an fs
    repository below it can be restored by the other (method restore)."""
    return tmp_path_factory.mktemp("shared-repo")


@pytest.fixture(scope="session")
def search_nodes(shared_repo: Path) -> Iterator[NodePool]:
    """Nodes of every version for the whole run: ``search_nodes.get(engine, version)``
    starts one on first use; at most four are alive, the least recently used is
    stopped to make room (so modules are ordered by node: each starts once). Four: the
    two pinned session nodes plus a source and a target of other versions at once (ES
    6.8 copied live into OpenSearch 1.3); four 512 MB-heap nodes take about 5 GB."""
    pool = NodePool(limit=4, repo_dirs=(shared_repo,))
    try:
        yield pool
    finally:
        _STARTED.update(pool.started)
        pool.stop_all()


def _node(engine: str, shared_repo: Path, pool: NodePool) -> Iterator[SearchNode]:
    # 1 GB, not the matrix nodes' 512 MB: the session pair holds a thousand indices'
    # metadata (test_backfill_many) and takes a 50 MB document (odd data) whose bulk is
    # parsed several times over; 512 MB ran out of heap with both.
    node = SearchNode(engine, repo_dirs=(shared_repo,), heap="1g").start()
    java = java_major_for(engine, node.installed_version)
    _STARTED[engine] = f"{node.number} ({node.home.name}, Java {java})"
    # The pool hands the same node to tests that ask for this version, never stops it.
    pool.pin(node)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def opensearch(shared_repo: Path, search_nodes: NodePool) -> Iterator[SearchNode]:
    yield from _node("opensearch", shared_repo, search_nodes)


@pytest.fixture(scope="session")
def elasticsearch(shared_repo: Path, search_nodes: NodePool) -> Iterator[SearchNode]:
    yield from _node("elasticsearch", shared_repo, search_nodes)


@pytest.fixture
def private_node(tmp_path: Path) -> Iterator[Callable[..., SearchNode]]:
    """``private_node(engine, version, **options)``: a started node of this test's own,
    for tests that stop, restart or corrupt it; stopped when the test ends."""
    nodes: list[SearchNode] = []

    def start(engine: str, version: str | None = None, **options: Any) -> SearchNode:
        node = SearchNode(engine, version, workdir=tmp_path / f"node-{len(nodes)}",
                          **options)
        nodes.append(node)
        return node.start()

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture(scope="session")
def operator(crds: KubeAPIServer) -> Iterator[OperatorProcess]:
    """`ferry run` against the real API server, watching all namespaces."""
    # Short leases so tests that kill the operator see its items re-claimed quickly.
    # FERRY_CLEANUP_TIMEOUT: deleting a resource gives up on an unreachable cluster after
    # this many seconds (default 600), small here so tests of that bound stay short.
    # FERRY_WORKER_IMAGE: what the chart passes (Backfill executor pods; no kubelet pulls it).
    # AWS_*: what the operator's default credential chain finds, as IRSA would give it;
    # the test bed's S3 (moto) accepts them (a Backfill reading snapshot files from S3).
    proc = OperatorProcess(crds.kubeconfig, env={"FERRY_LEASE_SECONDS": "15",
                                                 "FERRY_CLEANUP_TIMEOUT": "15",
                                                 "FERRY_WORKER_IMAGE": "ferry-operator:test",
                                                 "AWS_ACCESS_KEY_ID": S3Server.access_key,
                                                 "AWS_SECRET_ACCESS_KEY": S3Server.secret_key,
                                                 },
                           ).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def proxies() -> Iterator[list[ReverseProxy]]:
    """Test-only reverse proxies a test starts; all stopped when it ends."""
    started: list[ReverseProxy] = []
    yield started
    for p in started:
        p.stop()


# -- no traceback from Ferry code that a test did not expect ---------------------------

_FERRY_FRAME = f'File "{Path(ferry.__file__).resolve().parent}/'
# log file -> how far the traceback check has read it
_CHECKED: dict[Path, int] = {}
_PLAIN_TRACEBACK = re.compile(r"Traceback \(most recent call last\):\n(?:[ \t].*\n)+\S.*")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "expect_traceback(text, ...): a Ferry traceback containing one of these "
        "texts may appear in an operator log during this test")


def _tracebacks(text: str) -> list[str]:
    """Tracebacks in a log (JSON lines' exc_info, or plain text) with a frame in Ferry."""
    found = []
    for line in text.splitlines():
        if line.startswith("{") and '"exc_info"' in line:
            with contextlib.suppress(ValueError):
                found.append(str(json.loads(line).get("exc_info") or ""))
    found += _PLAIN_TRACEBACK.findall(text)
    return [t for t in found if _FERRY_FRAME in t]


@pytest.fixture(autouse=True)
def no_unexpected_traceback(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test during which a Ferry process logged a traceback through Ferry code
    (a catch-all loop hides it otherwise) that the test did not declare with
    ``@pytest.mark.expect_traceback``."""
    yield
    expected = [text for mark in request.node.iter_markers("expect_traceback")
                for text in mark.args]
    unexpected = []
    for name, log in procs.LOGS:
        if not name.startswith("ferry") or not log.exists():
            continue
        with log.open("rb") as f:
            # From where the last check stopped: what a module fixture's operators
            # logged before this test counts against the first test that uses it.
            f.seek(_CHECKED.get(log, 0))
            new = f.read().decode(errors="replace")
            _CHECKED[log] = f.tell()
        unexpected += [f"{log}:\n{t}" for t in _tracebacks(new)
                       if not any(e in t for e in expected)]
    assert not unexpected, "Ferry logged a traceback:\n" + "\n".join(unexpected[:3])
