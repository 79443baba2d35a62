"""Child processes that are started, waited on until ready, and always stopped."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# Ports are handed out below Linux's ephemeral range (32768-60999 by default): a port
# the kernel gave out for bind(0) is also what it gives the next outgoing connection
# (any process's, and the suite makes thousands) as its local port, so the child
# that binds it a moment later could find it taken. Below the range only another
# listener can take it, and a random pick makes two concurrent runs choosing the same
# port in the same instant unlikely; ``PortInUse`` names the rest.
PORT_RANGE = (20000, 32767)
_handed_out: set[int] = set()


class PortInUse(RuntimeError):
    """A child exited early because a port it was given was taken meanwhile."""


def free_port() -> int:
    """A loopback TCP port nothing listens on now and this process has not handed
    out before."""
    for _ in range(200):
        port = random.randint(*PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {PORT_RANGE} after 200 tries")


def retry_on_port_clash(reset: Callable[[Any], None] | None = None,
                        attempts: int = 3) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a ``start`` method whose ports come from :func:`free_port`: when a child
    exits with ``PortInUse`` (another listener took a port between the pick and the
    bind), stop what did start, ``reset`` (e.g. remove a half-made data dir) and start
    again with fresh ports. A start given a fixed ``port`` (a restart) is not retried."""
    def wrap(start: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(start)
        def retried(self: Any, *args: Any, **kwargs: Any) -> T:
            for attempt in range(attempts):
                try:
                    return start(self, *args, **kwargs)
                except PortInUse:
                    if attempt == attempts - 1 or kwargs.get("port"):
                        raise
                    self.stop()
                    if reset is not None:
                        reset(self)
            raise AssertionError("unreachable")
        return retried
    return wrap


# (name, log file) of every process started in this run, for the checks that read
# all of them at the end (no secret in any Ferry log, no unexpected traceback).
LOGS: list[tuple[str, Path]] = []


class ManagedProcess:
    """One child process with its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str | os.PathLike[str]], log: Path,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 preexec: Callable[[], None] | None = None) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log = log
        self.env = env
        self.cwd = cwd
        self.preexec = preexec
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        if (self.name, self.log) not in LOGS:
            LOGS.append((self.name, self.log))
        out = self.log.open("ab")
        # A new session, so a stop reaches the whole tree (the engines' start
        # scripts exec java, but a wrapper may sit in between).
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=self.cwd, start_new_session=True,
                                     preexec_fn=self.preexec)
        out.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                tail = self.tail()
                error = PortInUse if "address already in use" in tail.lower() else \
                    RuntimeError
                raise error(f"{self.name} exited early; last log lines:\n{tail}")
            with contextlib.suppress(Exception):
                if probe():
                    return
            time.sleep(0.25)
        raise TimeoutError(f"{self.name} not ready after {timeout}s; last log lines:\n"
                           f"{self.tail()}")

    def stop(self, grace: float = 15.0) -> None:
        if not self.running or self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
