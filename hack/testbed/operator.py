"""The Ferry operator as a real child process (`ferry run`), logs to a file."""

from __future__ import annotations

import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from testbed.procs import ManagedProcess, free_port, retry_on_port_clash


@dataclass
class OperatorProcess:
    kubeconfig: Path
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ferry-op-")))
    proc: ManagedProcess | None = None
    health_port: int = 0
    metrics_port: int = 0
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.workdir / "operator.log"

    @retry_on_port_clash()
    def start(self) -> OperatorProcess:
        self.health_port = free_port()
        self.metrics_port = free_port()
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.env}
        ferry = Path(sys.executable).parent / "ferry"
        self.proc = ManagedProcess("ferry-operator", [
            ferry, "run", "--log-format", "json",
            "--liveness", f"http://127.0.0.1:{self.health_port}/healthz",
            "--metrics-port", str(self.metrics_port), *self.args,
        ], self.log, env=env).start()
        self.proc.wait_ready(self.healthy, timeout=60)
        self.starts += 1
        return self

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int | None:
        if self.proc is not None:
            self.proc.stop(grace=30)
            return self.proc.proc.returncode if self.proc.proc else None
        return None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
