"""The Backfill benchmark's JSON as Markdown: the summary figures (R, W, L, ratios) and
the tables of docs/benchmarks.md between its marker comments.

    python -m bench.report [--json docs/bench/backfill.json] [--docs docs/benchmarks.md]
                           [--check]

Rewrites the section between ``<!-- bench:backfill:begin -->`` and
``<!-- bench:backfill:end -->``; ``--check`` only says whether it is current (exit 1 if
not). ``render`` is also what ``bench.backfill`` prints at the end of a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:backfill:begin -->", "<!-- bench:backfill:end -->"
REPO = Path(__file__).resolve().parents[2]
DATASETS = (("small", "small-doc index"), ("larger", "larger indices"), ("overall", "overall"))
TARGET_OF_L = 0.9
AIM_SNAPSHOT_OF_W = 0.8  # the aim: no cluster reads the source, only the reader
Row = dict[str, Any]


def ok(row: Row | None) -> bool:
    return bool(row) and "error" not in row and bool(row.get("seconds"))  # type: ignore[union-attr]


def best(rows: Iterable[Row]) -> Row | None:
    return max((r for r in rows if ok(r)), key=lambda r: r["docs_per_s"], default=None)


def ferry_row(part: Row, workers: int) -> Row | None:
    return next((r for r in part.get("ferry", []) if r.get("workers") == workers), None)


def limit(read: float | None, write: float | None) -> float | None:
    """L: reads and writes sharing the same cores, each at its ceiling's cost."""
    return 1 / (1 / read + 1 / write) if read and write else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def summarise(part: Row) -> Row:
    r, w = best(part.get("read", [])), best(part.get("write", []))
    rate_r, rate_w = (r or {}).get("docs_per_s"), (w or {}).get("docs_per_s")
    rate_l = limit(rate_r, rate_w)
    f2 = ferry_row(part, 2) if ok(ferry_row(part, 2)) else None
    reindex = part.get("reindex") if ok(part.get("reindex")) else None
    e2e, copy = (f2 or {}).get("docs_per_s"), (f2 or {}).get("copy_docs_per_s")
    snap = part.get("snapshot") if ok(part.get("snapshot")) else None
    snap_e2e, snap_copy = (snap or {}).get("docs_per_s"), (snap or {}).get("copy_docs_per_s")
    return {"R": rate_r, "R_concurrency": (r or {}).get("concurrency"),
            "W": rate_w, "W_concurrency": (w or {}).get("concurrency"), "L": rate_l,
            "ratios": {"ferry2_vs_reindex": ratio(e2e, (reindex or {}).get("docs_per_s")),
                       "ferry2_vs_W": ratio(e2e, rate_w), "ferry2_vs_L": ratio(e2e, rate_l),
                       "ferry2_copy_vs_L": ratio(copy, rate_l),
                       "reindex_vs_L": ratio((reindex or {}).get("docs_per_s"), rate_l),
                       "snapshot_vs_ferry2": ratio(snap_e2e, e2e),
                       "snapshot_copy_vs_ferry2_copy": ratio(snap_copy, copy),
                       "snapshot_vs_W": ratio(snap_e2e, rate_w),
                       "snapshot_copy_vs_W": ratio(snap_copy, rate_w)}}


def combined(rows: list[Row | None], docs: list[int]) -> Row | None:
    """Both data sets copied one after the other: all documents over the summed time."""
    if len(rows) < 2 or not all(ok(r) for r in rows):
        return None
    seconds = sum(r["seconds"] for r in rows)  # type: ignore[index]
    return {"seconds": seconds, "docs_per_s": sum(docs) / seconds}


def overall(parts: dict[str, Row]) -> Row:
    names = [n for n, _ in DATASETS if n in parts]
    docs = [parts[n]["data"]["docs"] for n in names]
    out: Row = {"data": {"docs": sum(docs)}}
    pick = {"read": lambda p: best(p.get("read", [])), "write": lambda p: best(
        p.get("write", [])), "reindex": lambda p: p.get("reindex")}
    for key, fn in pick.items():
        row = combined([fn(parts[n]) for n in names], docs)
        if row:
            out[key] = [row] if key != "reindex" else row
    workers = sorted({r.get("workers") for n in names for r in parts[n].get("ferry", [])})
    ferry = []
    for n in workers:
        rows = [ferry_row(parts[name], n) for name in names]
        e2e = combined(rows, docs)
        copies = [{"seconds": r["copy_seconds"]} if ok(r) and r.get("copy_seconds") else None
                  for r in rows]
        copy = combined(copies, docs)
        if e2e:
            ferry.append({"workers": n, **e2e,
                          "copy_docs_per_s": copy["docs_per_s"] if copy else None})
    if ferry:
        out["ferry"] = ferry
    if snapshot := overall_snapshot([parts[n].get("snapshot") for n in names], docs):
        out["snapshot"] = snapshot
    return out


def overall_snapshot(rows: list[Row | None], docs: list[int]) -> Row | None:
    """The Backfills from a snapshot and the reader alone, over both data sets."""
    if not any(rows):
        return None
    out: Row = {}
    e2e = combined(rows, docs)
    copy = combined([{"seconds": r["copy_seconds"]} if ok(r) and r.get("copy_seconds")
                     else None for r in rows], docs)
    if e2e:
        out.update(e2e, copy_docs_per_s=copy["docs_per_s"] if copy else None)
    readers = [(r or {}).get("reader") for r in rows]
    if reading := combined(readers, docs):
        cpu = sum(r["cpu_seconds"] for r in readers)  # type: ignore[index]
        out["reader"] = {**reading, "cpu_s_per_1k_docs": cpu / sum(docs) * 1000}
    return out or None


def with_summary(datasets: dict[str, Row]) -> dict[str, Row]:
    """The data sets plus ``overall``, each with R, W, L and the ratios."""
    parts = {k: v for k, v in datasets.items() if k != "overall"}
    if len(parts) > 1:
        parts["overall"] = overall(parts)
    return {k: {**v, "summary": summarise(v)} for k, v in parts.items()}


# -- Markdown ---------------------------------------------------------------------------

def num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def table(head: list[str], rows: list[list[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(head))]
    return ["| " + " | ".join(r) + " |" for r in (head, align, *rows)]


def rate(row: Row | None, key: str = "docs_per_s") -> str:
    if row and "error" in row:
        return "failed"
    return num((row or {}).get(key))


def describe(name: str, data: Row) -> str:
    return (f"{name}: {data['docs']:,} documents in {data['indices']} "
            f"{'index' if data['indices'] == 1 else 'indices'} ({data['shards']} shards), "
            f"{data['avg_doc_bytes']} bytes of `_source` each on average "
            f"({data['source_mb']} MB)")


def throughput(parts: dict[str, Row], settings: Row) -> list[str]:
    cols = [(k, label) for k, label in DATASETS if k in parts]
    rows: list[list[str]] = []
    for n in settings.get("workers", []):
        label = f"Ferry, {n} worker{'s' if n > 1 else ''}"
        rows.append([f"{label}, end to end"] + [rate(ferry_row(parts[k], n)) for k, _ in cols])
        rows.append([f"{label}, copy phase"] + [
            rate(ferry_row(parts[k], n), "copy_docs_per_s") for k, _ in cols])
    size = settings.get("reindex_size")
    rows.append([f"`_reindex` from remote (one task per index, size {size:,})"] + [
        rate(parts[k].get("reindex")) for k, _ in cols])
    for key, label in (("W", "W: write ceiling (pre-built bulks)"),
                       ("R", "R: read ceiling (scroll)")):
        rows.append([label] + [num(parts[k]["summary"][key]) + (
            f" (c={parts[k]['summary'][key + '_concurrency']})"
            if parts[k]["summary"].get(key + "_concurrency") else "") for k, _ in cols])
    rows.append(["L = 1 / (1/R + 1/W)"] + [num(parts[k]["summary"]["L"]) for k, _ in cols])
    ratios = [("ferry(2) / `_reindex`", "ferry2_vs_reindex"), ("ferry(2) / W", "ferry2_vs_W"),
              (f"ferry(2) / L (target ≥ {TARGET_OF_L})", "ferry2_vs_L"),
              ("ferry(2) copy phase / L", "ferry2_copy_vs_L"), ("`_reindex` / L", "reindex_vs_L")]
    if any("snapshot" in parts[k] for k, _ in cols):
        rows += snapshot_rows([parts[k].get("snapshot") for k, _ in cols],
                              settings.get("snapshot_workers", 2))
        ratios += [("ferry-snapshot / ferry(2) live", "snapshot_vs_ferry2"),
                   ("ferry-snapshot copy phase / ferry(2) copy phase",
                    "snapshot_copy_vs_ferry2_copy"),
                   (f"ferry-snapshot / W (aim ≥ {AIM_SNAPSHOT_OF_W})", "snapshot_vs_W"),
                   ("ferry-snapshot copy phase / W", "snapshot_copy_vs_W")]
    for label, key in ratios:
        values = [parts[k]["summary"]["ratios"][key] for k, _ in cols]
        rows.append([label] + [num(x, 2) + "x" if x else "—" for x in values])
    return table(["docs/s"] + [label for _, label in cols], rows)


def snapshot_rows(rows: list[Row | None], workers: int) -> list[list[str]]:
    """ferry-snapshot: the Backfill from a snapshot's files, and the reader alone."""
    label = f"Ferry from a snapshot, {workers} worker{'s' if workers > 1 else ''}"
    readers = [(r or {}).get("reader") for r in rows]
    return [[f"{label}, end to end"] + [rate(r) for r in rows],
            [f"{label}, copy phase"] + [rate(r, "copy_docs_per_s") for r in rows],
            ["snapshot reader alone (one thread, nothing written)"] + [rate(r) for r in readers]]


def sweeps(parts: dict[str, Row], settings: Row) -> list[str]:
    names = [(k, label) for k, label in DATASETS[:2] if k in parts and parts[k].get("write")]
    if not names:
        return []
    rows = []
    for c in settings.get("concurrency", []):
        cells = []
        for kind in ("write", "read"):
            for k, _ in names:
                cells.append(rate(next((r for r in parts[k][kind]
                                        if r.get("concurrency") == c), None)))
        rows.append([str(c), *cells])
    head = ["connections"] + [f"{kind} {label}" for kind in ("W", "R") for _, label in names]
    first = parts[names[0][0]]
    return ["", f"Ceilings by connections (docs/s; bulks of {first['page_docs']:,} documents, "
            f"{first['bulk_bytes_avg'] / 1e6:.2f} MB on average for the {names[0][1]}):", "",
            *table(head, rows)]


def ferry_costs(parts: dict[str, Row]) -> list[str]:
    rows = []
    for k, label in DATASETS[:2]:
        for r in (parts.get(k) or {}).get("ferry", []):
            if ok(r):
                rows.append([label, str(r["workers"]), num(r["seconds"], 1),
                             num(r.get("before_copy_seconds"), 1), num(r.get("copy_seconds"), 1),
                             num(r.get("after_copy_seconds"), 1),
                             num(r["cpu_s_per_1k_docs"], 3), num(r["peak_rss_mb"])])
    if not rows:
        return []
    return ["", "Ferry's runs: where the time went (seconds, from the phases a watch saw) and "
            "the operator's cost (its process tree, from /proc):", "",
            *table(["data set", "workers", "end to end", "before copy", "copy",
                    "after copy (verify)", "CPU s / 1k docs", "peak RSS MB"], rows, 1)]


def snapshot_costs(parts: dict[str, Row]) -> list[str]:
    rows = []
    for k, label in DATASETS[:2]:
        r = (parts.get(k) or {}).get("snapshot")
        if not r:
            continue
        reading = r.get("reader") if ok(r.get("reader")) else None
        rows.append([label, num(r.get("snapshot_seconds"), 1), num(r.get("seconds"), 1),
                     num(r.get("before_copy_seconds"), 1), num(r.get("copy_seconds"), 1),
                     num(r.get("after_copy_seconds"), 1), num(r.get("cpu_s_per_1k_docs"), 3),
                     num(r.get("peak_rss_mb")), num((reading or {}).get("cpu_s_per_1k_docs"), 3)])
    if not rows:
        return []
    return ["", "Ferry from a snapshot (`source.snapshotRef`, the same indices): the Snapshot "
            "taken first, not part of the timing; the Backfill's phases; the operator's cost; "
            "and the reader's own CPU, reading the same snapshot alone in the bench process "
            "(`time.process_time`):", "",
            *table(["data set", "Snapshot taken", "end to end", "before copy", "copy",
                    "after copy (verify)", "operator CPU s / 1k docs", "peak RSS MB",
                    "reader CPU s / 1k docs"], rows)]


def scale(rows: list[Row]) -> list[str]:
    if not rows:
        return []
    base = next((r.get("docs_per_s") for r in rows if ok(r)), None)
    body = [[f"x{r['factor']}", f"{r['docs']:,}", num(r.get("seconds"), 1), rate(r),
             rate(r, "copy_docs_per_s"), num(ratio(r.get("docs_per_s"), base), 2)]
            for r in rows]
    return ["", "Scale series (small documents, Ferry 2 workers; linear cost keeps docs/s "
            "flat, target x4 within 15 % of x1):", "",
            *table(["documents", "count", "seconds", "docs/s", "copy phase docs/s",
                    "vs x1"], body)]


def index_count(rows: list[Row]) -> list[str]:
    if not rows:
        return []
    body = [[f"{r['indices']:,}", f"{r['docs']:,}", num(r.get("seconds"), 1), rate(r),
             num(r.get("planning_seconds"), 1), num(r.get("metadata_seconds"), 1),
             num(r.get("copy_seconds"), 1), num(r.get("after_copy_seconds"), 1),
             num(1000 * r["planning_and_verify_s_per_index"], 1)
             if r.get("planning_and_verify_s_per_index") is not None else "—"]
            for r in rows]
    return ["", "Index-count series (the same documents over more one-shard indices, Ferry 2 "
            "workers; seconds from the phases a watch saw; target: planning + verification "
            "of 1,000 indices ≤ 60 s):", "",
            *table(["indices", "documents", "seconds", "docs/s", "planning", "metadata",
                    "copy", "verify", "planning + verify, ms / index"], body)]


def memory(row: Row | None) -> list[str]:
    """The memory case: Ferry with 4 workers on documents that fill 10 MiB bulks."""
    if not row:
        return []
    if "error" in row:
        return ["", f"Memory case: FAILED: {row['error']}"]
    data, run = row["data"], row["ferry"]
    if "error" in run:
        return ["", f"Memory case ({data['docs']:,} documents of about "
                f"{data['avg_doc_bytes']:,} bytes): FAILED: {run['error']}"]
    return ["", f"Memory case: {data['docs']:,} documents of about "
            f"{data['avg_doc_bytes']:,} bytes ({data['source_mb']} MB) in one index, so that "
            f"pages fill bulks of maxBytes (10 MiB, {row['page_docs']:,} documents), Ferry "
            f"with {run['workers']} workers: peak RSS {num(run.get('peak_rss_mb'), 0)} MB "
            f"(target ≤ 300), {rate(run)} docs/s end to end."]


def failures(result: Row) -> list[str]:
    found = []
    for k, part in result.get("datasets", {}).items():
        for key, rows in part.items():
            for r in rows if isinstance(rows, list) else [rows]:
                if isinstance(r, dict) and "error" in r:
                    found.append(f"- {k} {key}: {r['error']}")
                if isinstance(r, dict) and "error" in (r.get("reader") or {}):
                    found.append(f"- {k} {key} reader: {r['reader']['error']}")
    for key in ("scale", "index_count"):
        found += [f"- {key}: {r['error']}" for r in result.get(key, []) if "error" in r]
    return ["", "Failed runs:", "", *found] if found else []


def render(result: Row) -> str:
    """The Markdown section for one run's JSON."""
    parts, settings = result.get("datasets", {}), result.get("settings", {})
    v, m = result.get("versions", {}), result.get("machine", {})
    lines = [f"One run on {result['date'][:10]}: {m.get('cores')} cores, "
             f"{v.get('source')} → {v.get('target')}, Ferry {v.get('ferry')}; batch "
             f"maxDocs {settings.get('batch_max_docs'):,}, maxBytes "
             f"{settings.get('batch_max_bytes', 0) / 2 ** 20:.0f} MiB"
             + (f", bulksInFlight {settings['batch_bulks_in_flight']}"
                if settings.get("batch_bulks_in_flight") else "")
             + (f"; every figure of a data set the median of {settings['repeat']} rounds, "
                "each round running every contestant once, after an untimed W pass and an "
                "untimed Ferry Backfill" if settings.get("rounds") else
                f"; each Ferry and `_reindex` figure the median of {settings['repeat']} runs "
                "after an untimed Ferry warm-up" if settings.get("repeat", 1) > 1 else "")
             + "."]
    load = [m.get(f"load_average_at_{when}", [None])[0] for when in ("start", "end")]
    lines[0] += f" Load average (1 min) {load[0]} at the start, {load[1]} at the end."
    if result.get("quick"):
        lines += ["", "**Quick run (`--quick`, a few thousand documents): it proves the "
                  "script; its figures are not measurements.**"]
    lines.append("")
    lines += [f"- {describe(label, parts[k]['data'])}" for k, label in DATASETS[:2]
              if k in parts]
    if parts:
        lines += ["", *throughput(parts, settings), *sweeps(parts, settings),
                  *ferry_costs(parts), *snapshot_costs(parts)]
    lines += [*scale(result.get("scale", [])), *index_count(result.get("index_count", [])),
              *memory(result.get("memory")), *failures(result)]
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"the page has no {BEGIN} … {END} markers")
    return f"{head}{BEGIN}\n{section}{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=str(REPO / "docs" / "bench" / "backfill.json"))
    parser.add_argument("--docs", default=str(REPO / "docs" / "benchmarks.md"))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    page = Path(args.docs)
    text = page.read_text()
    new = replace_section(text, render(json.loads(Path(args.json).read_text())))
    if args.check:
        if new != text:
            print(f"{page} is not what {args.json} renders: run make bench-docs")
            return 1
        return 0
    page.write_text(new)
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
