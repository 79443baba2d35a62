"""README's "Install on your cluster" works as written: its manifests, read from
README.md itself, applied to the real API server with the test bed's endpoints, and
its own `kubectl wait` command, take a Backfill to Completed."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
import shlex
import urllib.error
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Install on your cluster"
DOCS = 20  # tiny: the test is about the manifests, not throughput


def _section() -> str:
    text = README.read_text()
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    body = text.split(SECTION, 1)[1]
    return re.split(r"^## ", body, maxsplit=1, flags=re.MULTILINE)[0]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", _section(), re.MULTILINE | re.DOTALL)


def _manifests() -> list[dict[str, Any]]:
    return [doc for block in _blocks("yaml") for doc in yaml.safe_load_all(block) if doc]


def _wait_command() -> list[str]:
    lines = [line.split("#", 1)[0].strip() for block in _blocks("bash")
             for line in block.splitlines()]
    waits = [shlex.split(line) for line in lines if line.startswith("kubectl wait ")]
    assert len(waits) == 1, f"expected one `kubectl wait` in the README's section: {waits}"
    return waits[0][1:]  # without "kubectl": the test bed's kubectl runs it


def test_readme_quickstart_completes(kube: KubeAPIServer, operator: OperatorProcess,
                                     elasticsearch: SearchNode, opensearch: SearchNode,
                                     namespace: str) -> None:
    manifests = _manifests()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in manifests:
        by_kind.setdefault(doc["kind"], []).append(doc)
    assert sorted(by_kind) == ["Backfill", "Cluster", "Secret"], sorted(by_kind)

    # The test bed's endpoints in place of the README's example hosts; nothing else of
    # the Clusters changes (auth, readOnly stay as written).
    endpoints = {"source": elasticsearch.url, "target": opensearch.url}
    clusters = by_kind["Cluster"]
    assert sorted(c["metadata"]["name"] for c in clusters) == sorted(endpoints)
    for cluster in clusters:
        cluster["spec"]["endpoint"] = endpoints[cluster["metadata"]["name"]]

    # A small index of its own on the source, one the README's pattern selects; the
    # Backfill is narrowed to it so other tests' indices on the shared nodes stay out.
    (backfill,) = by_kind["Backfill"]
    index = f"logs-quickstart-{uuid.uuid4().hex[:8]}"
    patterns = backfill["spec"]["indices"]
    assert any(fnmatch.fnmatchcase(index, p) for p in patterns), patterns
    backfill["spec"]["indices"] = [index]
    try:
        lines = [json.dumps(line) for i in range(DOCS)
                 for line in ({"index": {"_index": index, "_id": str(i)}},
                              {"message": f"GET /item/{i} 200", "bytes": i * 10})]
        elasticsearch.request("POST", "/_bulk?refresh=true", ("\n".join(lines) + "\n").encode())

        kube.apply(namespace, *manifests)
        name = backfill["metadata"]["name"]
        # The README's own wait, as written but for its namespace and a test-sized timeout.
        args = [re.sub(r"^--timeout=.*", "--timeout=300s", a) for a in _wait_command()]
        assert f"backfill/{name}" in args and "--for=condition=Ready" in args, args
        waited = kube.kubectl(*args, "-n", namespace, check=False, timeout=330)
        obj = kube.get("backfill", namespace, name) or {}
        assert waited.returncode == 0, (waited.stderr, obj.get("status"))

        status = obj["status"]
        assert status["phase"] == "Completed", status
        assert status["progress"]["docsMigrated"] == DOCS
        verified = next(c for c in status["conditions"] if c["type"] == "Verified")
        assert verified["status"] == "True", verified
        opensearch.request("POST", f"/{index}/_refresh")
        assert opensearch.request("GET", f"/{index}/_count")["count"] == DOCS  # type: ignore[index]
    finally:  # the nodes are shared: leave no index a later "every index" test would see
        for node in (elasticsearch, opensearch):
            with contextlib.suppress(urllib.error.HTTPError):
                node.request("DELETE", f"/{index}")
