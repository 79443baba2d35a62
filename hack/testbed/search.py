"""Real OpenSearch and Elasticsearch nodes, single-node, small heap, on loopback.

Both engines refuse to run as root and have no switch for it; tests and CI run as
root. A node therefore runs in a user namespace (``unshare --user``) where it is uid
1000 while the kernel still checks its file access as the caller's: it can read an
install inside a private 0700 checkout and write its dirs without any chown. Each node
gets a private copy of its config and its own data, logs, repo and tmp dirs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from testbed.paths import ENGINES, MissingPart
from testbed.procs import ManagedProcess, free_port

JAVA17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
NODE_UID = 1000  # what the node sees inside its user namespace
FETCH_HINT = "run `make testbed` (hack/fetch-search-engines.sh)"


def find_install(engine: str, version: str | None = None) -> Path:
    pattern = f"{engine}-{version}" if version else f"{engine}-*"
    found = sorted(p for p in ENGINES.glob(pattern) if (p / "bin" / engine).exists())
    if not found:
        raise MissingPart(f"no {engine} install under {ENGINES}; {FETCH_HINT}")
    return found[-1]


@dataclass
class SearchNode:
    """One node. ``engine`` is "opensearch" or "elasticsearch"."""

    engine: str
    version: str | None = None
    heap: str = "512m"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ferry-node-")))
    repo_dirs: tuple[Path, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)
    proc: ManagedProcess | None = None
    port: int = 0
    home: Path = Path()
    info: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def repo(self) -> Path:
        """The node's own path.repo dir: fs repositories go below it."""
        return self.workdir / "repo"

    @property
    def number(self) -> str:
        return str(self.info.get("version", {}).get("number", ""))  # type: ignore[union-attr]

    def start(self, timeout: float = 240) -> SearchNode:
        self.home = find_install(self.engine, self.version)
        if not JAVA17.exists():
            raise MissingPart(f"{JAVA17} is missing: the nodes need a Java 17 runtime")
        run = self.workdir
        for sub in ("data", "logs", "repo", "tmp"):
            (run / sub).mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.home / "config", run / "config", dirs_exist_ok=True)
        for extra in self.repo_dirs:
            extra.mkdir(parents=True, exist_ok=True)

        self.port = free_port()
        es = self.engine == "elasticsearch"
        prefix = "ES" if es else "OPENSEARCH"
        repos = ",".join(str(p) for p in (run / "repo", *self.repo_dirs))
        settings = {
            "discovery.type": "single-node",
            "network.host": "127.0.0.1",
            "http.port": str(self.port),
            "transport.port": str(free_port()),
            "path.data": str(run / "data"),
            "path.logs": str(run / "logs"),
            "path.repo": repos,
            "cluster.name": f"ferry-test-{self.engine}",
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "reindex.remote.whitelist" if es else "reindex.remote.allowlist": "127.0.0.1:*",
            "action.auto_create_index": "true",
            **self.settings,
        }
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(run),
            "JAVA_HOME": str(JAVA17),
            f"{prefix}_JAVA_HOME": str(JAVA17),
            f"{prefix}_PATH_CONF": str(run / "config"),
            f"{prefix}_TMPDIR": str(run / "tmp"),
            f"{prefix}_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}",
        }
        unshare = shutil.which("unshare")
        if unshare is None:
            raise MissingPart("unshare (util-linux) is needed to run the nodes as non-root")
        argv = [unshare, "--user", f"--map-user={NODE_UID}", f"--map-group={NODE_UID}",
                str(self.home / "bin" / self.engine)]
        argv += [f"-E{k}={v}" for k, v in settings.items()]
        self.proc = ManagedProcess(self.engine, argv, run / "stdout.log", env=env,
                                   cwd=run).start()

        def ready() -> bool:
            with urllib.request.urlopen(
                    f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=1s",
                    timeout=5) as r:
                return r.status == 200

        self.proc.wait_ready(ready, timeout=timeout)
        with urllib.request.urlopen(self.url, timeout=5) as r:
            self.info = json.load(r)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace=30)

    def request(self, method: str, path: str, body: object | None = None) -> object:
        """A tiny JSON client for test set-up, independent of the code under test."""
        data = None if body is None else (
            body if isinstance(body, bytes) else json.dumps(body).encode())
        ctype = "application/x-ndjson" if isinstance(body, bytes) else "application/json"
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
        return json.loads(raw) if raw else None
