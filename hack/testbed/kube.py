"""A real kube-apiserver backed by a real etcd, started the way envtest does it."""

from __future__ import annotations

import contextlib
import json
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from testbed.paths import binary
from testbed.pki import CertificateAuthority, rsa_keypair_pem
from testbed.procs import ManagedProcess, free_port, retry_on_port_clash

BUILD_HINT = "run `make testbed` (hack/build-testbed-go.sh builds it from Go modules)"


@dataclass
class KubeAPIServer:
    """etcd + kube-apiserver on loopback, an admin kubeconfig, RBAC on."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ferry-kube-")))
    extra_args: tuple[str, ...] = ()
    # On when a kube-controller-manager runs beside it (hack/testbed/node.py): it makes
    # the default ServiceAccounts that the admission plugin then requires.
    service_accounts: bool = False
    etcd: ManagedProcess | None = None
    apiserver: ManagedProcess | None = None
    url: str = ""
    kubeconfig: Path = Path()
    version: str = ""
    ca: CertificateAuthority = field(default_factory=CertificateAuthority)
    _admin_tls: ssl.SSLContext | None = field(default=None, repr=False)

    @retry_on_port_clash(reset=lambda self: shutil.rmtree(self.workdir / "etcd",
                                                          ignore_errors=True))
    def start(self) -> KubeAPIServer:
        etcd_bin = binary("etcd", BUILD_HINT)
        apiserver_bin = binary("kube-apiserver", BUILD_HINT)
        pki = self.workdir / "pki"
        serving_cert, serving_key = self.ca.issue(
            "kube-apiserver", hosts=("127.0.0.1", "localhost")).write(pki, "serving")
        admin_cert, admin_key = self.ca.issue(
            "ferry-testbed-admin", organizations=("system:masters",), client=True
        ).write(pki, "admin")
        ca_file = pki / "ca.crt"
        ca_file.write_bytes(self.ca.cert_pem)
        sa_private, sa_public = rsa_keypair_pem()
        (pki / "sa.key").write_bytes(sa_private)
        (pki / "sa.pub").write_bytes(sa_public)

        etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
        self.etcd = ManagedProcess("etcd", [
            etcd_bin, "--data-dir", self.workdir / "etcd",
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}",
            # A test bed has nothing to lose on power failure; fsync costs seconds.
            "--unsafe-no-fsync", "--log-level", "warn",
        ], self.workdir / "etcd.log").start()
        self.etcd.wait_ready(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{etcd_port}/health", timeout=2)
            .status == 200, timeout=60)

        self.url = f"https://127.0.0.1:{api_port}"
        self.apiserver = ManagedProcess("kube-apiserver", [
            apiserver_bin,
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--tls-cert-file={serving_cert}", f"--tls-private-key-file={serving_key}",
            f"--client-ca-file={ca_file}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-account-issuer={self.url}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            # No controller-manager runs, so no default ServiceAccount is ever created.
            *(() if self.service_accounts else ("--disable-admission-plugins=ServiceAccount",)),
            f"--cert-dir={pki}",
            *self.extra_args,
        ], self.workdir / "kube-apiserver.log").start()

        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "testbed", "cluster": {
                "server": self.url, "certificate-authority": str(ca_file)}}],
            "users": [{"name": "admin", "user": {
                "client-certificate": str(admin_cert), "client-key": str(admin_key)}}],
            "contexts": [{"name": "testbed", "context": {
                "cluster": "testbed", "user": "admin", "namespace": "default"}}],
            "current-context": "testbed",
        }))
        self._admin_tls = ctx = ssl.create_default_context(cafile=str(ca_file))
        ctx.load_cert_chain(str(admin_cert), str(admin_key))
        self.apiserver.wait_ready(self._ready, timeout=180)
        with urllib.request.urlopen(f"{self.url}/version", context=ctx, timeout=5) as r:
            self.version = json.load(r)["gitVersion"]
        self._wait_default_namespace()
        return self

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/readyz", context=self._admin_tls,
                                    timeout=3) as r:
            return r.status == 200

    def stop_apiserver(self, grace: float = 3.0) -> None:
        """Stop kube-apiserver alone, as a rollout would: SIGTERM (it stops listening at
        once, but can take a long while to exit), SIGKILL after ``grace`` seconds. etcd
        keeps the data."""
        assert self.apiserver is not None
        self.apiserver.stop(grace=grace)

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port, certificates and etcd; returns
        once it is ready."""
        assert self.apiserver is not None
        self.apiserver.start().wait_ready(self._ready, timeout=180)

    def _wait_default_namespace(self) -> None:
        # The "default" namespace is created by a post-start hook shortly after readyz.
        self.apiserver.wait_ready(  # type: ignore[union-attr]
            lambda: self.kubectl("get", "namespace", "default", check=False).returncode == 0,
            timeout=60)

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kubectl = binary("kubectl", "run `make testbed` (hack/fetch-kube-tools.sh)")
        return subprocess.run([str(kubectl), f"--kubeconfig={self.kubeconfig}", *args],
                              capture_output=True, text=True, check=check, input=input,
                              timeout=timeout)

    def stop(self) -> None:
        for proc in (self.apiserver, self.etcd):
            if proc is not None:
                proc.stop()

    # -- conveniences for tests and the demo -------------------------------------------

    def drop_namespace(self, namespace: str) -> None:
        """Delete a test's namespace. No namespace controller runs here, so a namespace
        never finishes terminating: Ferry's resources go first (and are waited for) so
        the operator lets go of them and no cleanup — a coordination index or snapshot
        being deleted — still changes the shared nodes while the next test runs.
        Backfills and Snapshots before Clusters: their cleanup reads the Clusters."""
        for kinds in ("backfills.ferry.dev,snapshots.ferry.dev", "clusters.ferry.dev"):
            # A slow cleanup must not fail the next test; the operator goes on with it.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.kubectl("delete", "-n", namespace, "--wait=true", "--timeout=150s",
                             "--ignore-not-found", kinds, "--all", check=False, timeout=180)
        self.kubectl("delete", "namespace", namespace, "--wait=false", check=False)

    def apply(self, namespace: str, *objs: dict) -> None:
        doc = {"apiVersion": "v1", "kind": "List", "items": list(objs)}
        self.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc))

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        out = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def wait_for(self, kind: str, namespace: str, name: str,
                 predicate: Callable[[dict], bool], timeout: float = 60,
                 interval: float = 0.5) -> dict:
        """Poll until ``predicate(obj)`` holds; the error shows the last status seen."""
        deadline = time.monotonic() + timeout
        obj: dict | None = None
        while time.monotonic() < deadline:
            obj = self.get(kind, namespace, name)
            if obj is not None:
                with contextlib.suppress(KeyError, TypeError, IndexError):
                    if predicate(obj):
                        return obj
            time.sleep(interval)
        status = json.dumps((obj or {}).get("status"), indent=1)
        raise TimeoutError(f"{kind} {namespace}/{name}: condition not met in {timeout}s; "
                           f"last status: {status}")

    def events(self, namespace: str, name: str | None = None) -> list[dict]:
        out = json.loads(self.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
        return [e for e in out["items"]
                if name is None or e["involvedObject"].get("name") == name]
