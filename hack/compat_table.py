"""docs/compatibility.md from what the version-matrix tests proved.

``python -m compat_table [--results FILE] [--docs FILE] [--save]``: the table of
source x target x method, every ✓ naming the test whose last run passed, every ✗ why,
"not testable here" what is missing. The claims (what Ferry promises, and what it
refuses) are declared here; the proof only ever comes from the results JSON the tests
write (``testbed/results.py``): a claim no passing test backs says "not proven yet".
``--save`` first copies build/matrix/results.json to docs/compatibility.json (the
committed results the table is generated from; tests/unit/test_compat_table.py fails
when the two drift), without the rows of tests that no longer exist.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from testbed.matrix import MATRIX
from testbed.paths import BUILD, ROOT
from testbed.search import java_major_for, release

DOCS = ROOT / "docs" / "compatibility.md"
COMMITTED = ROOT / "docs" / "compatibility.json"
LAST_RUN = BUILD / "matrix" / "results.json"

COPY, RESTORE, FILES = "copy", "restore", "copy from snapshot files"
METHODS = (COPY, RESTORE, FILES)
# A test that proves Ferry refuses a cell (nothing written) records "<method> refused".
REFUSAL = " refused"
SHORT = {"elasticsearch": "ES", "opensearch": "OS"}

# (source, target) -> the methods Ferry claims for the pair (the version-matrix issue's
# table, plus what the tests prove beyond it).
CLAIMED: dict[tuple[str, str], tuple[str, ...]] = {
    ("ES 5.6", "OS 2.19"): (COPY, FILES),
    ("ES 6.8", "OS 1.3"): (COPY, RESTORE),
    ("ES 6.8", "OS 2.19"): (COPY, FILES),
    ("ES 6.8", "OS 3.3"): (FILES,),
    ("ES 7.10", "OS 1.3"): (COPY, RESTORE),
    ("ES 7.10", "OS 2.19"): (COPY, RESTORE, FILES),
    ("ES 7.10", "OS 3.3"): (COPY,),
    ("ES 7.10", "ES 8.15"): (COPY,),
    ("ES 8.15", "OS 2.19"): (COPY, FILES),
    ("OS 1.3", "OS 2.19"): (COPY, RESTORE, FILES),
    ("OS 1.3", "OS 3.3"): (COPY,),
    ("OS 2.19", "OS 2.19"): (COPY, FILES),
    ("OS 2.19", "OS 3.3"): (COPY, RESTORE),
}

# Cells Ferry refuses before writing anything, and why.
REFUSED: dict[tuple[str, str, str], str] = {
    ("OS 2.19", "OS 1.3", COPY): "a copy never goes to an older version (the source's "
    "mappings and settings may not exist there)",
    ("ES 5.6", "OS 2.19", RESTORE): "OpenSearch 2 cannot read indices written by ES 5 "
    "(Lucene 6); use copy",
    ("ES 6.8", "OS 2.19", RESTORE): "OpenSearch 2 cannot read indices written by ES 6 "
    "(Lucene 7); use copy",
    ("ES 6.8", "OS 3.3", RESTORE): "OpenSearch 3 reads only indices written by OpenSearch 2; "
    "use copy",
    ("ES 7.10", "OS 3.3", RESTORE): "OpenSearch 3 reads only indices written by OpenSearch 2; "
    "use copy",
    ("ES 8.15", "OS 2.19", RESTORE): "an ES 8 index (Lucene 9.11) is newer than OpenSearch "
    "2.19 reads; use copy",
    ("OS 1.3", "OS 3.3", RESTORE): "OpenSearch 3 reads only indices written by OpenSearch 2; "
    "use copy",
}

# Cells that cannot be proven on this test bed, and what is missing.
NOT_TESTABLE: dict[tuple[str, str, str], str] = {
    ("ES 7.10", "ES 8.15", RESTORE): "ES 8 restores ES 7 snapshots, but Ferry's restore "
    "targets OpenSearch only",
}


# What the test bed cannot show at all, whatever the cell.
NOT_TESTABLE_NOTES = (
    "Elasticsearch 8.15 runs with its bundled modules only (no 8.x module jar is "
    "published): parent/join, scaled_float, painless, analysis-common filters and "
    "`_reindex` are not testable on it, so its data set uses core types only.",
    "Elasticsearch 8 API keys: its `.security` index needs analysis-common's "
    "pattern_capture filter, which the test bed's node lacks; basic auth and the CA are "
    "tested on it, API keys through the test proxy.",
    "Snapshots of OpenSearch 3.3 as a source: its repository layout is not read by "
    "Ferry's snapshot reader yet (Lucene 10 unproven), so OpenSearch 3 is a target only.",
    "A real S3 snapshot repository (no repository-s3 plugin on Maven Central): S3 is "
    "tested through moto for Ferry's own reads.",
)


def label(side: dict[str, str] | None) -> str:
    if side is None:
        return ""
    major_minor = ".".join(str(p) for p in release(side["version"])[:2])
    return f"{SHORT[side['engine']]} {major_minor}"


def test_name(nodeid: str) -> str:
    return nodeid.removeprefix("tests/")


def proofs(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, list[str]]]:
    """(source, target, method) -> {"pass": [tests], "fail": [tests]}."""
    cells: dict[tuple[str, str, str], dict[str, list[str]]] = defaultdict(
        lambda: {"pass": [], "fail": []})
    for row in results:
        key = (label(row["source"]), label(row["target"]), row["method"])
        cells[key]["pass" if row["pass"] else "fail"].append(test_name(row["test"]))
    return cells


def cell(key: tuple[str, str, str], cells: dict[tuple[str, str, str], dict[str, list[str]]],
         claimed: bool) -> str:
    found = cells.get(key)
    refusal = cells.get((key[0], key[1], key[2] + REFUSAL))
    if found and found["fail"]:
        return "✗ failed in the last run: " + ", ".join(f"`{t}`" for t in found["fail"])
    if found and found["pass"]:
        return "✓ " + ", ".join(f"`{t}`" for t in found["pass"])
    if key in REFUSED:
        return f"✗ refused: {REFUSED[key]}" + (
            f" (refusal proven by {', '.join(f'`{t}`' for t in refusal['pass'])})"
            if refusal and refusal["pass"] else " (refusal not tested)")
    if key in NOT_TESTABLE:
        return f"not testable here: {NOT_TESTABLE[key]}"
    return "not proven yet" if claimed else "—"


def render(document: dict[str, Any]) -> str:
    results = document["results"]
    cells = proofs(results)
    lines = [
        "# Compatibility",
        "",
        "Generated by `make compat-docs` from [compatibility.json](compatibility.json), the "
        "results the version-matrix tests wrote in their last run "
        f"({document['written']}); `tests/unit/test_compat_table.py` fails when this page "
        "drifts from them. ✓ names the test that proved the cell on real nodes; ✗ says why "
        "Ferry refuses the pair (before writing anything) or which test failed; \"not "
        "proven yet\" is a pair Ferry aims at that no test has proven on this test bed.",
        "",
        "## Versions",
        "",
        "| version | Java on the test bed | Cluster (detection, health, counts) | Snapshot "
        "(Completed + Verified) | Snapshot adoption and deletionPolicy Delete |",
        "|---|---|---|---|---|",
    ]
    for engine, version in MATRIX:
        name = f"{SHORT[engine]} {'.'.join(version.split('.')[:2])}"
        versions = sorted({r["source"]["version"] for r in results
                           if label(r["source"]) == name} or {version})
        java = java_major_for(engine, versions[-1])
        row = [f"{name} ({', '.join(versions)})", f"Java {java}"]
        source = (engine, version.split(".")[0]) != ("opensearch", "3")  # a target only
        for method in ("cluster", "snapshot (Completed + Verified)",
                       "snapshot adoption and deletionPolicy Delete"):
            row.append(cell((name, "", method), cells, method == "cluster" or source))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Migrations", "",
              "| source | target | " + " | ".join(METHODS) + " |",
              "|---|---|" + "---|" * len(METHODS)]
    pairs = set(CLAIMED) | {(s, t) for s, t, m in cells if t} | \
        {(s, t) for s, t, _ in REFUSED} | {(s, t) for s, t, _ in NOT_TESTABLE}
    order = [f"{SHORT[e]} {'.'.join(v.split('.')[:2])}" for e, v in MATRIX]  # MATRIX order
    for source, target in sorted(pairs, key=lambda p: (order.index(p[0]), order.index(p[1]))):
        claimed = CLAIMED.get((source, target), ())
        row = [source, target] + [cell((source, target, m), cells, m in claimed)
                                  for m in METHODS]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Any pair not listed (e.g. a copy into an older version or into "
              "Elasticsearch 5/6, a restore into an older version) is refused before "
              "anything is written, naming what the target takes (method copy where copy "
              "would work).", "", "## Not testable here", ""]
    lines += [f"- {note}" for note in NOT_TESTABLE_NOTES] + [""]
    return "\n".join(lines)


def current(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose test function still exists. The results file keeps the rows of
    tests that did not run (partial runs merge), so the last outcome of a renamed or
    deleted test would otherwise decide its cell for good (a failed one: ✗)."""
    def exists(test: str) -> bool:
        path, name = test.split("::", 1)
        function = re.sub(r"\[.*\]$", "", name)
        source = ROOT / path
        return source.is_file() and f"def {function}(" in source.read_text()
    return [row for row in results if exists(row["test"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=COMMITTED)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--save", action="store_true",
                        help=f"copy {LAST_RUN} to the committed results first (without "
                        "the rows of tests that no longer exist)")
    args = parser.parse_args()
    if args.save:
        document = json.loads(LAST_RUN.read_text())
        document["results"] = current(document["results"])
        COMMITTED.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    args.docs.write_text(render(json.loads(args.results.read_text())))
    print(f"wrote {args.docs}")


if __name__ == "__main__":
    main()
