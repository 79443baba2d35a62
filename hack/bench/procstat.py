"""CPU time and memory of a process and its descendants, read from /proc.

Linux only (the benchmarks run on the test bed's Linux hosts). CPU is user + system
time of the live processes plus what their reaped children left in ``cutime``/
``cstime``; peak memory is ``VmHWM``, which ``clear_refs`` resets so each measured run
gets its own peak.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Current resident set of one process, in MB (0 if it is gone)."""
    return _status_kb(pid, "VmRSS") / 1024


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(
                    int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


class ProcessMeter:
    """CPU seconds and peak RSS of a process tree (an operator and its workers)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_seconds(self) -> float:
        ticks = 0
        for pid in descendants(self.pid):
            with contextlib.suppress(OSError, IndexError):
                # utime, stime, cutime, cstime: fields 14-17 of stat, 11-14 after the name.
                ticks += sum(int(v) for v in _stat_fields(pid)[11:15])
        return ticks / TICKS

    def reset_peak(self) -> bool:
        """Restart the high-water mark of every process of the tree; False if the kernel
        refused (then the peak covers the process's whole life)."""
        done = True
        for pid in descendants(self.pid):
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                done = False
        return done

    def peak_rss_mb(self) -> float:
        """Sum of the tree's peaks: an upper bound of the tree's peak at one time."""
        return sum(_status_kb(pid, "VmHWM") for pid in descendants(self.pid)) / 1024


class RssSampler(threading.Thread):
    """Samples one process's RSS every 0.2 s and keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._stop_flag = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.2)

    def stop(self) -> float:
        self._stop_flag.set()
        self.join()
        return self.peak
