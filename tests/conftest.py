"""Session fixtures that start the real parts of the test bed.

Each part starts on first use and stops at the end of the session. A missing part is
an error, never a skip: a green run means every test talked to the real thing.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.proxy import ReverseProxy
from testbed.s3 import S3Server
from testbed.search import SearchNode

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "crds"

# name -> version of each real part this session started, for the closing summary.
_STARTED: dict[str, str] = {}


# module -> seconds spent in its tests (setup, call, teardown), for the closing summary.
_MODULE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::")[0]
    _MODULE_SECONDS[module] = _MODULE_SECONDS.get(module, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _MODULE_SECONDS:
        terminalreporter.section("time per test module")
        for module, seconds in sorted(_MODULE_SECONDS.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{seconds:8.1f}s  {module}")
    if _STARTED:
        terminalreporter.section("real parts of the test bed")
        for name, version in _STARTED.items():
            terminalreporter.write_line(f"{name}: {version}")


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeAPIServer]:
    server = KubeAPIServer().start()
    etcd_version = server.version and _etcd_version()
    _STARTED["kube-apiserver"] = server.version
    _STARTED["etcd"] = etcd_version
    _STARTED["kubectl"] = server.kubectl("version", "--client", "-o", "json").stdout.split(
        '"gitVersion": "')[1].split('"')[0]
    try:
        yield server
    finally:
        server.stop()


def _etcd_version() -> str:
    import subprocess

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
    # No namespace controller runs here, so a namespace never finishes terminating:
    # delete Ferry's resources first so the operator lets go of them, and wait, so no
    # cleanup (a coordination index or snapshot being deleted) is still changing the
    # shared nodes while the next test runs. Backfills and Snapshots go first: their
    # cleanup reads the Clusters they name.
    for kinds in ("backfills.ferry.dev,snapshots.ferry.dev", "clusters.ferry.dev"):
        # A slow cleanup must not fail the next test; the operator goes on with it.
        with contextlib.suppress(subprocess.TimeoutExpired):
            kube.kubectl("delete", "-n", name, "--wait=true", "--timeout=150s",
                         "--ignore-not-found", kinds, "--all", check=False, timeout=180)
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


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


def _node(engine: str, shared_repo: Path) -> Iterator[SearchNode]:
    node = SearchNode(engine, repo_dirs=(shared_repo,)).start()
    _STARTED[engine] = f"{node.number} ({node.home.name}, Java 17)"
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def opensearch(shared_repo: Path) -> Iterator[SearchNode]:
    yield from _node("opensearch", shared_repo)


@pytest.fixture(scope="session")
def elasticsearch(shared_repo: Path) -> Iterator[SearchNode]:
    yield from _node("elasticsearch", shared_repo)


@pytest.fixture(scope="session")
def operator(crds: KubeAPIServer) -> Iterator[OperatorProcess]:
    """`ferry run` against the real API server, watching all namespaces."""
    # Short leases so tests that kill the operator see its items re-claimed quickly.
    # FERRY_CLEANUP_TIMEOUT: deleting a resource gives up on an unreachable cluster after
    # this many seconds (default 600), small here so tests of that bound stay short.
    # FERRY_WORKER_IMAGE: what the chart passes (Backfill executor pods; no kubelet pulls it).
    proc = OperatorProcess(crds.kubeconfig, env={"FERRY_LEASE_SECONDS": "15",
                                                 "FERRY_CLEANUP_TIMEOUT": "15",
                                                 "FERRY_WORKER_IMAGE": "ferry-operator:test"},
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
