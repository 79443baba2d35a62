"""The real helm binary, with its own config/cache/data homes, and a kubeconfig for a
ServiceAccount (a TokenRequest token): what the chart's tests drive."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testbed.kube import KubeAPIServer
from testbed.paths import ROOT, binary

CHART = ROOT / "charts" / "ferry"
HINT = "run `make testbed` (hack/fetch-kube-tools.sh)"


@dataclass
class Helm:
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ferry-helm-")))

    def run(self, *args: str, kube: KubeAPIServer | None = None, check: bool = True,
            ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ,
               "HELM_CACHE_HOME": str(self.home / "cache"),
               "HELM_CONFIG_HOME": str(self.home / "config"),
               "HELM_DATA_HOME": str(self.home / "data"),
               "HELM_NO_PLUGINS": "1"}
        argv = [str(binary("helm", HINT)), *args]
        if kube is not None:
            argv.append(f"--kubeconfig={kube.kubeconfig}")
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180)
        if check and out.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({out.returncode}):\n"
                                 f"{out.stderr}{out.stdout}")
        return out

    def template(self, values: dict[str, Any] | None = None, *, release: str = "ferry",
                 namespace: str = "ferry-system", chart: Path = CHART) -> str:
        args = ["template", release, str(chart), "--namespace", namespace]
        if values:
            args += ["--values", str(self.values_file(values))]
        return self.run(*args).stdout

    def render(self, values: dict[str, Any] | None = None, **kw: Any) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.template(values, **kw)) if d]

    def values_file(self, values: dict[str, Any]) -> Path:
        path = Path(tempfile.mkstemp(prefix="values-", suffix=".yaml", dir=self.home)[1])
        path.write_text(yaml.safe_dump(values))
        return path


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None,
         namespace: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind
            and (name is None or o["metadata"]["name"] == name)
            and (namespace is None or o["metadata"].get("namespace") == namespace)]


def service_account_kubeconfig(kube: KubeAPIServer, namespace: str, name: str,
                               path: Path, duration: str = "2h") -> Path:
    """A kubeconfig that authenticates as ServiceAccount namespace/name with a token from
    the TokenRequest API (`kubectl create token`), as a pod's projected token would."""
    token = kube.kubectl("create", "token", name, "-n", namespace,
                         f"--duration={duration}").stdout.strip()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "testbed", "cluster": {
            "server": kube.url, "certificate-authority": str(kube.workdir / "pki" / "ca.crt")}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "testbed", "user": name,
                                                "namespace": namespace}}],
        "current-context": name,
    }))
    whoami = subprocess.run(
        [str(binary("kubectl", HINT)), f"--kubeconfig={path}", "auth", "whoami", "-o", "json"],
        capture_output=True, text=True, check=True, timeout=60).stdout
    user = json.loads(whoami)["status"]["userInfo"]["username"]
    assert user == f"system:serviceaccount:{namespace}:{name}", user
    return path
