"""Real OpenSearch and Elasticsearch nodes, single-node, small heap, on loopback.

Both engines refuse to run as root and have no switch for it; tests and CI run as
root. A node therefore runs in a user namespace (``unshare --user``) where it is uid
1000 while the kernel still checks its file access as the caller's: it can read an
install inside a private 0700 checkout and write its dirs without any chown. Each node
gets a private copy of its config and its own data, logs, repo and tmp dirs.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from testbed.paths import ENGINES, MissingPart
from testbed.procs import ManagedProcess, free_port

JAVA_MAJOR = 17  # what OpenSearch 2.19 and Elasticsearch 7.10 run on here
NODE_UID = 1000  # what the node sees inside its user namespace
FETCH_HINT = "run `make testbed` (hack/fetch-search-engines.sh)"


def find_install(engine: str, version: str | None = None) -> Path:
    pattern = f"{engine}-{version}" if version else f"{engine}-*"
    found = sorted(p for p in ENGINES.glob(pattern) if (p / "bin" / engine).exists())
    if not found:
        raise MissingPart(f"no {engine} install under {ENGINES}; {FETCH_HINT}")
    return found[-1]


def java_major(home: Path) -> int | None:
    """The major version of the JDK/JRE at ``home``, or None if it is not one.

    A JDK's ``release`` file names it (``JAVA_VERSION="17.0.15"``) without starting a
    JVM; ``java -version`` is the fallback for an install that lacks the file.
    """
    if not (home / "bin" / "java").is_file():
        return None
    release = home / "release"
    text = release.read_text(errors="replace") if release.is_file() else ""
    match = re.search(r'^JAVA_VERSION="([^"]+)"', text, re.MULTILINE)
    if match is None:
        out = subprocess.run([str(home / "bin" / "java"), "-version"], capture_output=True,
                             text=True, timeout=30)
        match = re.search(r'version "([^"]+)"', out.stderr)
    if match is None:
        return None
    parts = match.group(1).split(".")
    # Java 8 and older call themselves 1.8.
    return int(parts[1] if parts[0] == "1" and len(parts) > 1 else re.sub(r"\D.*", "", parts[0]))


@functools.cache
def find_java(major: int = JAVA_MAJOR) -> Path:
    """The home of a Java ``major`` runtime for the nodes, looked for where a machine
    says it is: ``JAVA_HOME``, then ``java`` on PATH (resolved through its symlinks,
    e.g. Debian's /etc/alternatives), then /usr/lib/jvm/java-<major>-openjdk-* of any
    architecture. Raises MissingPart naming every candidate it turned down."""
    candidates: list[tuple[str, Path]] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(("JAVA_HOME", Path(os.environ["JAVA_HOME"])))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(("java on PATH", Path(os.path.realpath(on_path)).parent.parent))
    candidates += [("/usr/lib/jvm", Path(p)) for p in
                   sorted(glob.glob(f"/usr/lib/jvm/java-{major}-openjdk-*"))]
    rejected = []
    for source, home in candidates:
        found = java_major(home)
        if found == major:
            return home
        rejected.append(f"{source}: {home} ({'Java ' + str(found) if found else 'no java'})")
    tried = "; ".join(rejected) or "no JAVA_HOME, no java on PATH, nothing in /usr/lib/jvm"
    raise MissingPart(f"the search nodes need a Java {major} runtime and none was found "
                      f"({tried}). Install OpenJDK {major} (e.g. apt-get install "
                      f"openjdk-{major}-jdk-headless) or point JAVA_HOME at one.")


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
        java_home = find_java()
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
            "JAVA_HOME": str(java_home),
            f"{prefix}_JAVA_HOME": str(java_home),
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
