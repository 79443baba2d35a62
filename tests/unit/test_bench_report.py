"""docs/benchmarks.md shows exactly what bench.report renders from the committed run's
JSON (docs/bench/backfill.json): a table edited by hand, or a JSON replaced without
`make bench-docs`, fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "benchmarks.md"
RUN = ROOT / "docs" / "bench" / "backfill.json"


def committed_section() -> str:
    text = PAGE.read_text()
    assert text.count(report.BEGIN) == 1 and text.count(report.END) == 1, \
        f"{PAGE} needs exactly one pair of {report.BEGIN} … {report.END} markers"
    return text.split(report.BEGIN, 1)[1].split(report.END, 1)[0]


def test_the_docs_table_is_what_the_committed_json_renders() -> None:
    rendered = report.render(json.loads(RUN.read_text()))
    assert committed_section() == "\n" + rendered, \
        "docs/benchmarks.md differs from docs/bench/backfill.json: run `make bench-docs`"


def test_the_committed_run_says_whether_it_is_a_quick_one() -> None:
    run = json.loads(RUN.read_text())
    assert isinstance(run.get("quick"), bool)
    assert ("Quick run" in committed_section()) is run["quick"]


def test_replacing_the_section_keeps_the_rest_of_the_page() -> None:
    page = f"intro\n{report.BEGIN}\nold table\n{report.END}\nafter\n"
    assert report.replace_section(page, "new\n") == (
        f"intro\n{report.BEGIN}\nnew\n{report.END}\nafter\n")
    with pytest.raises(ValueError, match="markers"):
        report.replace_section("no markers here", "new\n")


def test_the_limit_is_the_harmonic_sum_of_the_two_ceilings() -> None:
    # Reading at 60k/s and writing at 30k/s on the same cores: 1/(1/60k + 1/30k) = 20k/s.
    part = {"read": [{"concurrency": 2, "seconds": 1.0, "docs_per_s": 60_000.0}],
            "write": [{"concurrency": 4, "seconds": 2.0, "docs_per_s": 30_000.0},
                      {"concurrency": 1, "error": "refused"}],
            "reindex": {"seconds": 4.0, "docs_per_s": 15_000.0},
            "ferry": [{"workers": 2, "seconds": 5.0, "docs_per_s": 12_000.0,
                       "copy_docs_per_s": 18_000.0}]}
    summary = report.summarise(part)
    assert summary["L"] == pytest.approx(20_000.0)
    assert summary["W_concurrency"] == 4
    assert summary["ratios"]["ferry2_vs_L"] == pytest.approx(0.6)
    assert summary["ratios"]["ferry2_copy_vs_L"] == pytest.approx(0.9)
    assert summary["ratios"]["ferry2_vs_reindex"] == pytest.approx(0.8)


def test_overall_is_all_documents_over_the_summed_time() -> None:
    def part(docs: int, seconds: float) -> dict:
        return {"data": {"docs": docs},
                "ferry": [{"workers": 2, "seconds": seconds, "docs_per_s": docs / seconds,
                           "copy_seconds": seconds / 2}]}
    summed = report.with_summary({"small": part(100, 1.0), "larger": part(300, 3.0)})
    ferry2 = summed["overall"]["ferry"][0]
    assert ferry2["docs_per_s"] == pytest.approx(100.0)
    assert ferry2["copy_docs_per_s"] == pytest.approx(200.0)


def snapshot_part(docs: int, seconds: float, copy_seconds: float, reader_cpu: float
                  ) -> dict:
    """A data set with W, ferry(2) live and ferry-snapshot figures."""
    return {"data": {"docs": docs},
            "write": [{"concurrency": 2, "seconds": docs / 1_000.0, "docs_per_s": 1_000.0}],
            "read": [{"concurrency": 2, "seconds": docs / 4_000.0, "docs_per_s": 4_000.0}],
            "ferry": [{"workers": 2, "seconds": 2 * seconds, "docs_per_s": docs / seconds / 2,
                       "copy_seconds": 2 * copy_seconds,
                       "copy_docs_per_s": docs / copy_seconds / 2,
                       "cpu_s_per_1k_docs": 0.1, "peak_rss_mb": 90.0}],
            "snapshot": {"workers": 2, "seconds": seconds, "docs_per_s": docs / seconds,
                         "copy_seconds": copy_seconds, "copy_docs_per_s": docs / copy_seconds,
                         "snapshot_seconds": 9.0, "cpu_s_per_1k_docs": 0.2,
                         "peak_rss_mb": 95.0,
                         "reader": {"seconds": 1.0, "docs_per_s": float(docs),
                                    "cpu_seconds": reader_cpu,
                                    "cpu_s_per_1k_docs": reader_cpu / docs * 1000}}}


def test_the_snapshot_row_is_its_rate_against_ferry2_live_and_w() -> None:
    # 800 docs/s from the snapshot against W at 1,000 docs/s and ferry(2) at half of it.
    summary = report.summarise(snapshot_part(800, 1.0, 0.5, 0.4))
    assert summary["ratios"]["snapshot_vs_W"] == pytest.approx(0.8)
    assert summary["ratios"]["snapshot_copy_vs_W"] == pytest.approx(1.6)
    assert summary["ratios"]["snapshot_vs_ferry2"] == pytest.approx(2.0)
    assert summary["ratios"]["snapshot_copy_vs_ferry2_copy"] == pytest.approx(2.0)
    # Without a ferry-snapshot run there is no ratio, not a zero.
    part = snapshot_part(800, 1.0, 0.5, 0.4)
    part["snapshot"] = {"error": "the Snapshot failed"}
    assert report.summarise(part)["ratios"]["snapshot_vs_W"] is None


def test_overall_snapshot_sums_time_and_the_readers_cpu() -> None:
    summed = report.with_summary({"small": snapshot_part(100, 1.0, 0.5, 0.2),
                                  "larger": snapshot_part(300, 3.0, 1.0, 0.6)})
    snap = summed["overall"]["snapshot"]
    assert snap["docs_per_s"] == pytest.approx(100.0)
    assert snap["copy_docs_per_s"] == pytest.approx(400 / 1.5)
    assert snap["reader"]["cpu_s_per_1k_docs"] == pytest.approx(0.8 / 400 * 1000)
    assert snap["reader"]["docs_per_s"] == pytest.approx(200.0)


def test_the_snapshot_rows_appear_only_in_runs_that_have_them() -> None:
    run = json.loads(RUN.read_text())
    has_them = any("snapshot" in part for part in run["datasets"].values())
    assert ("Ferry from a snapshot" in report.render(run)) is has_them
    run["settings"]["snapshot_workers"] = 2
    small = run["datasets"]["small"]
    run["datasets"] = report.with_summary({"small": {
        **small, **snapshot_part(800, 1.0, 0.5, 0.4), "data": {**small["data"], "docs": 800}}})
    text = report.render(run)
    rows = {line.split(" | ")[0].lstrip("| "): line.rstrip(" |").split(" | ")[1:]
            for line in text.splitlines() if line.startswith("| ")}
    assert rows["Ferry from a snapshot, 2 workers, end to end"] == ["800"]
    assert rows["Ferry from a snapshot, 2 workers, copy phase"] == ["1,600"]
    assert rows["snapshot reader alone (one thread, nothing written)"] == ["800"]
    assert rows["ferry-snapshot / ferry(2) live"] == ["2.00x"]
    assert rows["ferry-snapshot / W (aim ≥ 0.8)"] == ["0.80x"]
    # Its costs table, the page's last: the Snapshot's own time, apart, and the reader's
    # CPU per 1,000 documents (0.4 s over 800 documents).
    costs = text.split("Ferry from a snapshot (`source.snapshotRef`", 1)[1]
    [row] = [line for line in costs.splitlines() if line.startswith("| small-doc index")]
    cells = row.strip("| ").split(" | ")
    assert cells[1] == "9.0" and cells[-1] == "0.500"
