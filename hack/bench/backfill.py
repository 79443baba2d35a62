"""Backfill throughput, in one run on one machine: Ferry (1, 2, 4 workers) against
``_reindex`` from remote, the write-only ceiling W and the read-only ceiling R, on a
small-document index and on the larger-document indices; Ferry from a snapshot of the
same indices (2 workers, ``source.snapshotRef``) and the snapshot reader alone; then a
scale series (x1, x2, x4 documents) and an index-count series (1, 100, 1,000 indices),
Ferry with 2 workers.

    python -m bench.backfill [--quick]
                             [--only ceilings,reindex,ferry,snapshot,scale,indexcount]
                             [--json build/bench/backfill.json]

Elasticsearch 7.10 → OpenSearch 2.19, both started here by the test bed, and the
operator as a real process, all on the same cores. L = 1 / (1/R + 1/W) is the most a
live copier can reach on shared cores. Prints the tables (``bench.report``) and writes
JSON with every figure; ``python -m bench.report`` turns that JSON into the table in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import ceilings, contestants, dataset, reader, report
from bench.dataset import DataSet
from bench.procstat import ProcessMeter, RssSampler, rss_mb
from ferry.api.backfill import BatchSettings
from ferry.services.backfill.copier import MAX_PAGE
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.paths import BUILD
from testbed.search import SearchNode

__all__ = ["RssSampler", "main", "rss_mb"]  # the sampler is shared with bench.operator_scale

SECTIONS = ("ceilings", "reindex", "ferry", "snapshot", "scale", "indexcount", "memory")
# The sections that compare contestants on the small-doc and the larger data sets.
COMPARED = {"ceilings", "reindex", "ferry", "snapshot"}
# The sections that run Backfills: they need the API server's CRDs and the operator.
OPERATED = {"ferry", "snapshot", "scale", "indexcount", "memory"}
REPO = Path(__file__).resolve().parents[2]
# Sizes: the full run takes about 15 minutes on a quiet 2-core machine (a fifth of
# it the 1,000-index case, whose cost is index creation on both nodes, not documents);
# --quick in a few minutes. 200k documents a data set: a copy of seconds, not one or two,
# so that a Backfill's fixed cost (Kubernetes round trips, index creation, the final
# refresh: about a second) weighs on the figures as it would on a real migration of
# hundreds of thousands of documents, not as a third of the time.
FULL = {"small_docs": 200_000, "larger_docs": 200_000, "index_docs": 50_000,
         "index_counts": "1,100,1000", "big_docs": 12_000}
QUICK = {"small_docs": 3_000, "larger_docs": 3_000, "index_docs": 2_000,
         "index_counts": "1,10,50", "big_docs": 2_000}
# One scroll batch of _reindex from remote: 10x its default of 1,000, because every
# batch is a round trip to the source and the remote buffer (100 MB) holds this many
# documents of these sizes many times over.
REINDEX_SIZE = 10_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a few thousand documents: proves the script, not a figure")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--small-docs", type=int, help="documents in the small-doc index "
                        f"(x1 of the scale series; default {FULL['small_docs']})")
    parser.add_argument("--larger-docs", type=int,
                        help=f"documents in the larger indices (default {FULL['larger_docs']})")
    parser.add_argument("--scale", default="1,2,4", help="scale series factors")
    parser.add_argument("--index-counts", help="index-count series (default "
                        f"{FULL['index_counts']})")
    parser.add_argument("--index-docs", type=int, help="documents in each case of the "
                        f"index-count series (default {FULL['index_docs']})")
    parser.add_argument("--big-docs", type=int, help="documents of about 11 KB in the "
                        f"memory case (default {FULL['big_docs']})")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--snapshot-workers", type=int, default=2,
                        help="workers of the Backfill from a snapshot (default 2, as ferry(2))")
    parser.add_argument("--concurrency", default="1,2,4", help="ceilings' connections")
    parser.add_argument("--reindex-size", type=int, default=REINDEX_SIZE)
    parser.add_argument("--max-docs", type=int, help="batch.maxDocs of Ferry's Backfills "
                        "and of the ceilings' pages (default: the API's)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, each running every "
                        "contestant once; the median counts (default 3)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per Backfill")
    parser.add_argument("--json", default=str(BUILD / "bench" / "backfill.json"))
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.only = set(args.only.split(","))
    if unknown := args.only - set(SECTIONS):
        parser.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}")
    if max(ints(args.index_counts)) > args.index_docs:
        parser.error("--index-docs must be at least the largest index count (no empty index)")
    if ints(args.scale) != sorted(ints(args.scale)):
        parser.error("--scale: factors must be ascending (the index grows in place)")
    return args


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def attempt(what: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One measurement; a failure is recorded as a figure-less row, not the end of the run
    (the other contestants' figures are still worth having)."""
    print(f"  {what} ...", flush=True)
    try:
        row = fn()
    except Exception as exc:  # reported in the table and the JSON
        print(f"  {what}: FAILED: {exc}", flush=True)
        return {"error": str(exc)[:500]}
    shown = row.get("docs_per_s")
    print(f"  {what}: {row['seconds']:.1f} s" + (f", {shown:,.0f} docs/s" if shown else ""),
          flush=True)
    return row


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One contestant's row from its runs: the median run by seconds, with every run's
    seconds beside it. One lucky or unlucky run sets no figure."""
    good = sorted((r for r in rows if "error" not in r), key=lambda r: r["seconds"])
    if not good:
        return rows[0]
    return {**good[(len(good) - 1) // 2], "runs_seconds": [r.get("seconds") for r in rows]}


def with_rates(row: dict[str, Any], data: DataSet, seconds: float) -> dict[str, Any]:
    return {**row, "seconds": seconds, "docs_per_s": data.docs / seconds,
            "mb_per_s": data.source_bytes / 1e6 / seconds}


class Bench:
    def __init__(self, args: argparse.Namespace, source: SearchNode, target: SearchNode,
                 ferry: contestants.Ferry | None) -> None:
        self.args, self.source, self.target, self.ferry = args, source, target, ferry
        batch = BatchSettings()
        self.max_docs = args.max_docs or batch.max_docs
        self.max_bytes = batch.max_bytes
        self.bulks_in_flight = batch.bulks_in_flight

    def page(self, data: DataSet) -> int:
        """Ferry's page: maxDocs documents within the engines' result window, fewer if
        that many would pass a bulk of maxBytes (its API's documented rule)."""
        avg = max(1, data.source_bytes // max(1, data.docs))
        return max(1, min(self.max_docs, MAX_PAGE, self.max_bytes // avg))

    def warm_bulks(self, data: DataSet) -> tuple[dict[str, str], ceilings.Bulks, float]:
        """The ceilings' pre-built bulk bodies, and one untimed pass of them: a fresh
        node's first bulks run on cold code (the JIT, new shards), and the first
        contestant would pay for every later one."""
        targets = {index: "bulk-" + index for index in data.indices}
        bulks = ceilings.build_bulks(self.source, data, targets, self.page(data),
                                     self.max_bytes)
        warm = ceilings.write_once(self.target, data, targets, bulks,
                                   max(ints(self.args.concurrency)), "bulk-*")
        return targets, bulks, warm

    def write_ceiling(self, data: DataSet, targets: dict[str, str], bulks: ceilings.Bulks,
                      concurrency: int) -> dict[str, Any]:
        return with_rates({"concurrency": concurrency}, data, ceilings.write_once(
            self.target, data, targets, bulks, concurrency, "bulk-*"))

    def read_ceiling(self, data: DataSet, concurrency: int) -> dict[str, Any]:
        return with_rates({"concurrency": concurrency}, data, ceilings.read_once(
            self.source, data, self.page(data), concurrency))

    def ferry_run(self, name: str, data: DataSet, workers: int, snapshot: str | None = None
                  ) -> dict[str, Any]:
        assert self.ferry is not None
        patterns = [data.extra["pattern"]] if "pattern" in data.extra else data.indices
        row = self.ferry.run(name, patterns, workers, data.docs, snapshot)
        return {**row, "docs": data.docs, "mb_per_s": data.source_bytes / 1e6 / row["seconds"]}

    def snapshot(self, data: DataSet) -> dict[str, Any]:
        """A Ferry Snapshot of ``data`` (timed apart: it is not part of a copy), a
        Backfill from its files with the snapshot workers, then the reader alone on the
        same files in this process."""
        ferry = self.ferry
        assert ferry is not None
        name = f"snap-{data.name}"
        location = self.source.repo / name  # in the node's path.repo; the operator's too
        taken = attempt(f"Snapshot of {data.name}", lambda: ferry.take_snapshot(
            name, data.indices, location))
        if "error" in taken:
            return {"error": f"the Snapshot failed: {taken['error']}"}
        workers = self.args.snapshot_workers
        try:
            row = attempt(f"Ferry from the snapshot, {workers} worker(s)", lambda: self.ferry_run(
                f"{data.name}-snap-w{workers}", data, workers, snapshot=name))
            row["reader"] = attempt("the snapshot reader alone", lambda: reader.read_alone(
                location, taken["snapshot"], data.indices, data.docs))
        finally:
            ferry.delete_snapshot(name)
            shutil.rmtree(location, ignore_errors=True)
        return {"workers": workers, **row, "snapshot_seconds": taken["seconds"]}

    def reindex(self, data: DataSet) -> dict[str, Any]:
        row = contestants.reindex(self.source, self.target, data, self.args.reindex_size)
        return with_rates(row, data, row["seconds"])

    def compare(self, data: DataSet) -> dict[str, Any]:
        """Every contestant on ``data``, in rounds: each round runs each of them once, in
        the same order, and each row is the median of its runs over the rounds. The nodes
        keep warming for several runs (the JIT, caches), so runs back to back would favour
        whoever comes last; in rounds every contestant meets the same nodes."""
        print(f"{data.name}: {data.docs:,} documents in {len(data.specs)} indices", flush=True)
        out: dict[str, Any] = {"data": data.describe()}
        only, times = self.args.only, self.args.repeat
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        if "ceilings" in only:
            targets, bulks, out["warm_up_seconds"] = self.warm_bulks(data)
            out.update({"bulks": len(bulks.bodies), "page_docs": self.page(data),
                        "bulk_bytes_avg": bulks.bytes // max(1, len(bulks.bodies))})
        if "ferry" in only:
            # Like W's untimed pass: the first Backfill on these nodes runs on cold code
            # (the source's search and the target's indexing paths).
            out["ferry_warm_up"] = attempt("Ferry, 2 workers, untimed warm-up", lambda:
                                           self.ferry_run(f"{data.name}-warm", data, 2))

        def run(key: tuple[str, int], what: str, fn: Callable[[], dict[str, Any]]) -> None:
            label = f"{what} (round {len(runs.get(key, [])) + 1} of {times})" \
                if times > 1 else what
            runs.setdefault(key, []).append(attempt(label, fn))

        for _ in range(times):
            for c in ints(self.args.concurrency) if "ceilings" in only else ():
                run(("write", c), f"W, {c} connection(s)",
                    lambda c=c: self.write_ceiling(data, targets, bulks, c))
            for c in ints(self.args.concurrency) if "ceilings" in only else ():
                run(("read", c), f"R, {c} connection(s)", lambda c=c: self.read_ceiling(data, c))
            if "reindex" in only:
                run(("reindex", 0), "_reindex from remote", lambda: self.reindex(data))
            for n in ints(self.args.workers) if "ferry" in only else ():
                run(("ferry", n), f"Ferry, {n} worker(s)",
                    lambda n=n: self.ferry_run(f"{data.name}-w{n}", data, n))
        for kind in ("write", "read", "ferry"):
            if rows := [median_row(r) for (k, _), r in runs.items() if k == kind]:
                out[kind] = rows
        if ("reindex", 0) in runs:
            out["reindex"] = median_row(runs[("reindex", 0)])
        if "snapshot" in only:
            out["snapshot"] = self.snapshot(data)
        return out

    def scale(self, small: DataSet, measured: dict[str, Any] | None) -> list[dict[str, Any]]:
        print("scale series (Ferry, 2 workers)", flush=True)
        rows = []
        for factor in ints(self.args.scale):
            docs = self.args.small_docs * factor
            dataset.grow(self.source, small, docs)
            if measured and "error" not in measured and measured.get("docs") == docs:
                row = {**measured, "reused": "the ferry section's 2-worker run"}
            else:
                row = attempt(f"x{factor}: {docs:,} documents", lambda f=factor: self.ferry_run(
                    f"scale-x{f}", small, 2))
            rows.append({"factor": factor, **row, "docs": docs})
        return rows

    def memory(self) -> dict[str, Any]:
        """Peak RSS with 4 workers and pages that fill bulks of maxBytes."""
        print("memory case (Ferry, 4 workers, 10 MiB bulks)", flush=True)
        try:
            data = dataset.big(self.source, self.args.big_docs)
        except Exception as exc:  # reported, like a contestant's failure
            ceilings.delete_indices(self.source, f"{dataset.BIG_INDEX}*")
            return {"error": f"the data set did not load: {str(exc)[:300]}"}
        try:
            row = attempt(f"{data.docs:,} documents of about "
                          f"{data.source_bytes // data.docs:,} bytes",
                          lambda: self.ferry_run("big-w4", data, 4))
        finally:
            ceilings.delete_indices(self.source, f"{dataset.BIG_INDEX}*")
        return {"data": data.describe(), "page_docs": self.page(data), "ferry": row}

    def index_count(self) -> list[dict[str, Any]]:
        print("index-count series (Ferry, 2 workers)", flush=True)
        rows = []
        for count in ints(self.args.index_counts):
            start = time.monotonic()
            try:
                data = dataset.many(self.source, count, self.args.index_docs)
            except Exception as exc:  # a row without figures, and the run goes on
                print(f"  {count} indices: FAILED to load: {exc}", flush=True)
                with contextlib.suppress(Exception):  # what did load goes with the node
                    ceilings.delete_indices(self.source, f"count{count}-*")
                rows.append({"indices": count, "docs": 0,
                             "error": f"the data set did not load: {str(exc)[:300]}"})
                continue
            print(f"  loaded {count} indices in {time.monotonic() - start:.0f} s", flush=True)
            row = attempt(f"{count} indices", lambda d=data, c=count: self.ferry_run(
                f"count-{c}", d, 2))
            ceilings.delete_indices(self.source, data.extra["pattern"])
            if "error" not in row:
                row["planning_and_verify_s_per_index"] = (
                    row["planning_seconds"] + row["after_copy_seconds"]) / count
            rows.append({"indices": count, "docs": data.docs, **row})
        return rows


def versions(source: SearchNode, target: SearchNode) -> dict[str, str]:
    def git(*argv: str) -> str:
        out = subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True)
        return out.stdout.strip()
    dirty = "+changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return {"source": f"Elasticsearch {source.number}", "target": f"OpenSearch {target.number}",
            "ferry": git("rev-parse", "--short", "HEAD") + dirty,
            "python": platform.python_version()}


def machine() -> dict[str, Any]:
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return {"cores": os.cpu_count(), "memory_gb": round(int(mem) / 1024 ** 2),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}


def main() -> int:
    args = parse_args()
    began = time.monotonic()
    result: dict[str, Any] = {"quick": args.quick, "date": datetime.now(UTC).isoformat(
        timespec="seconds"), "machine": machine(), "sections": sorted(args.only)}
    timings: dict[str, float] = {}
    parts: list[Any] = []
    # A thousand one-shard indices plus the rest: above a single node's default of 1,000.
    node_settings = {"cluster.max_shards_per_node": "5000"}
    try:
        kube = KubeAPIServer().start()
        parts.append(kube)
        source = SearchNode("elasticsearch", heap="1g", settings=node_settings).start()
        parts.append(source)
        target = SearchNode("opensearch", heap="1g", settings=node_settings).start()
        parts.append(target)
        result["versions"] = versions(source, target)
        ferry = None
        if args.only & OPERATED:
            kube.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
            kube.kubectl("wait", "--for=condition=Established", "crd", "--all",
                         "--timeout=60s")
            operator = OperatorProcess(kube.kubeconfig).start()
            parts.append(operator)
            assert operator.proc and operator.proc.proc
            ferry = contestants.Ferry(kube, "bench", source, target,
                                      ProcessMeter(operator.proc.proc.pid), args.timeout,
                                      {"maxDocs": args.max_docs} if args.max_docs else None)
        bench = Bench(args, source, target, ferry)
        result["settings"] = {"batch_max_docs": bench.max_docs,
                              "batch_max_bytes": bench.max_bytes,
                              "batch_bulks_in_flight": bench.bulks_in_flight,
                              "repeat": args.repeat, "rounds": True,
                              "reindex_size": args.reindex_size,
                              "workers": ints(args.workers),
                              "snapshot_workers": args.snapshot_workers,
                              "concurrency": ints(args.concurrency)}
        timings["startup"] = time.monotonic() - began
        datasets: dict[str, Any] = {}
        small = None
        if args.only & (COMPARED | {"scale"}):
            mark = time.monotonic()
            small = dataset.small(source, args.small_docs)
            compared = ([small, dataset.larger(source, args.larger_docs)]
                        if args.only & COMPARED else [])
            timings["load"] = time.monotonic() - mark
            for data in compared:
                mark = time.monotonic()
                datasets[data.name] = bench.compare(data)
                timings[data.name] = time.monotonic() - mark
        result["datasets"] = report.with_summary(datasets)
        if "scale" in args.only and small is not None:
            mark = time.monotonic()
            ferry2 = next((r for r in datasets.get("small", {}).get("ferry", [])
                           if r.get("workers") == 2), None)
            result["scale"] = bench.scale(small, ferry2)
            timings["scale"] = time.monotonic() - mark
        if "memory" in args.only:
            mark = time.monotonic()
            result["memory"] = bench.memory()
            timings["memory"] = time.monotonic() - mark
        if "indexcount" in args.only:
            mark = time.monotonic()
            result["index_count"] = bench.index_count()
            timings["indexcount"] = time.monotonic() - mark
    finally:
        for part in reversed(parts):
            part.stop()
    timings["total"] = time.monotonic() - began
    result["wall_seconds"] = {k: round(v, 1) for k, v in timings.items()}
    result["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print()
    print(report.render(result))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out} ({timings['total']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
