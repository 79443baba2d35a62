"""The test bed's port clash retry, on real child processes and real sockets."""

from __future__ import annotations

import socket
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.procs import ManagedProcess, PortInUse, free_port, retry_on_port_clash


class TinyServer:
    """A real child (python -m http.server) on the ports it is handed, in order."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.starts = self.stops = 0
        self.proc: ManagedProcess | None = None
        self.log = Path(tempfile.mkdtemp(prefix="ferry-ports-")) / "server.log"

    @retry_on_port_clash()
    def start(self, port: int | None = None) -> TinyServer:
        self.starts += 1
        self.port = port or self.ports.pop(0)
        self.proc = ManagedProcess("tiny", [sys.executable, "-m", "http.server",
                                            str(self.port), "--bind", "127.0.0.1"],
                                   self.log).start()
        self.proc.wait_ready(lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/", timeout=2).status == 200, timeout=30)
        return self

    def stop(self) -> None:
        self.stops += 1
        if self.proc is not None:
            self.proc.stop()


@pytest.fixture
def taken_port() -> Iterator[socket.socket]:
    """A port another listener holds."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", free_port()))
    holder.listen()
    yield holder
    holder.close()


def test_a_port_taken_between_pick_and_bind_is_retried_with_a_fresh_one(
        taken_port: socket.socket) -> None:
    clash, fresh = taken_port.getsockname()[1], free_port()
    server = TinyServer([clash, fresh]).start()
    try:
        assert (server.starts, server.stops, server.port) == (2, 1, fresh)
    finally:
        server.stop()


def test_a_fixed_port_is_not_retried(taken_port: socket.socket) -> None:
    server = TinyServer([free_port()])
    with pytest.raises(PortInUse):
        server.start(port=taken_port.getsockname()[1])
    assert server.starts == 1
