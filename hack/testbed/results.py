"""What the version-matrix tests proved, for the compatibility table.

A test names its cell — ``results.case(request, method, source, target)`` — and the
outcome pytest reports for that test decides the cell: passed, or failed (a test that
failed midway, errored or was skipped never counts as proof). At the end of the run the
rows are merged into ``build/matrix/results.json`` (rows of tests that did not run this
time are kept), which ``make compat-docs`` turns into docs/compatibility.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from testbed.paths import BUILD

RESULTS = BUILD / "matrix" / "results.json"


class Node(Protocol):
    engine: str

    @property
    def installed_version(self) -> str: ...


def side(node: Node | None) -> dict[str, str] | None:
    return None if node is None else {"engine": node.engine,
                                      "version": node.installed_version}


@dataclass
class MatrixResults:
    path: Path = RESULTS
    rows: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, bool] = field(default_factory=dict)

    def case(self, nodeid: str, method: str, source: Node, target: Node | None = None
             ) -> None:
        """The test ``nodeid`` proves ``method`` from ``source`` (into ``target``)."""
        self.rows.append({"source": side(source), "target": side(target),
                          "method": method, "test": nodeid})

    def report(self, nodeid: str, passed: bool, skipped: bool) -> None:
        """One phase of a test's report: it passed only if every phase did."""
        ok = passed and not skipped
        self.outcomes[nodeid] = self.outcomes.get(nodeid, True) and ok

    def write(self) -> None:
        if not self.rows:
            return
        rows = [{**r, "pass": self.outcomes.get(r["test"], False)} for r in self.rows]
        old: list[dict[str, Any]] = []
        if self.path.exists():
            old = json.loads(self.path.read_text()).get("results", [])
        ran = {r["test"] for r in rows}
        merged = [r for r in old if r["test"] not in ran] + rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(
            {"written": datetime.now(UTC).isoformat(timespec="seconds"),
             "results": sorted(merged, key=lambda r: r["test"])},
            indent=1, ensure_ascii=False) + "\n")
