"""docs/compatibility.md is generated from docs/compatibility.json (the results the
version-matrix tests wrote): it must not drift, and every test it names must exist."""

from __future__ import annotations

import json
import re

import compat_table

ROOT = compat_table.ROOT


def committed() -> dict:
    return json.loads(compat_table.COMMITTED.read_text())


def test_the_committed_table_is_generated_from_the_committed_results() -> None:
    assert compat_table.DOCS.read_text() == compat_table.render(committed()), \
        "docs/compatibility.md drifted: run `make compat-docs`"


def test_every_test_named_as_proof_exists() -> None:
    for row in committed()["results"]:
        path, name = row["test"].split("::", 1)
        function = re.sub(r"\[.*\]$", "", name)
        assert f"def {function}(" in (ROOT / path).read_text(), row["test"]


def test_a_cell_is_proven_only_by_a_passing_test() -> None:
    source = {"engine": "elasticsearch", "version": "6.8.23"}
    target = {"engine": "opensearch", "version": "1.3.20"}
    row = {"source": source, "target": target, "method": "copy",
           "test": "tests/integration/test_x.py::test_y"}
    failed = compat_table.render({"written": "t", "results": [{**row, "pass": False}]})
    passed = compat_table.render({"written": "t", "results": [{**row, "pass": True}]})
    line = next(x for x in failed.splitlines() if x.startswith("| ES 6.8 | OS 1.3 |"))
    assert "✗ failed in the last run: `integration/test_x.py::test_y`" in line
    line = next(x for x in passed.splitlines() if x.startswith("| ES 6.8 | OS 1.3 |"))
    assert line.split(" | ")[2] == "✓ `integration/test_x.py::test_y`"
    # With no result at all the claim is still there, unproven.
    empty = compat_table.render({"written": "t", "results": []})
    line = next(x for x in empty.splitlines() if x.startswith("| ES 6.8 | OS 1.3 |"))
    assert line.split(" | ")[2] == "not proven yet"
