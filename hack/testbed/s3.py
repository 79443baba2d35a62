"""A real S3 protocol endpoint: moto's server mode, as its own process."""

from __future__ import annotations

import shutil
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from testbed.paths import MissingPart
from testbed.procs import ManagedProcess, free_port, retry_on_port_clash


@dataclass
class S3Server:
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ferry-s3-")))
    proc: ManagedProcess | None = None
    url: str = ""
    version: str = ""
    # moto accepts any credentials; fixed ones make the tests' clients simple.
    access_key: str = "testbed-access-key"
    secret_key: str = "testbed-secret-key"
    region: str = "us-east-1"

    @retry_on_port_clash()
    def start(self) -> S3Server:
        moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        if moto is None:
            raise MissingPart("moto_server is missing; install the test extras (make venv)")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.version = version("moto")
        self.proc = ManagedProcess("moto", [moto, "-H", "127.0.0.1", "-p", str(port)],
                                   self.workdir / "moto.log").start()
        self.proc.wait_ready(
            lambda: urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2).status == 200,
            timeout=60)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
