"""The restructure's promises, checked on the code itself: one request path to a search
cluster, bounded module sizes, one phase vocabulary, settings read once."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

from ferry.api.backfill import BackfillPhase
from ferry.api.cluster import ClusterPhase
from ferry.api.phases import BackfillPhases, ClusterPhases, SnapshotPhases, phase_names
from ferry.api.snapshot import SnapshotPhase
from ferry.settings import OperatorOptions

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "ferry"
MAX_LINES = 450


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_clients_package_imports_the_search_client() -> None:
    offenders = [str(p.relative_to(PACKAGE)) for p in _modules()
                 if "clients" not in p.relative_to(PACKAGE).parts
                 and any(n.split(".")[0] == "opensearchpy" for n in _imports(p))]
    assert offenders == []


def test_no_module_is_over_the_size_bound() -> None:
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in _modules()}
    assert {k: v for k, v in sizes.items() if v > MAX_LINES} == {}


def test_services_never_import_kopf_or_handlers() -> None:
    services = [p for p in _modules() if "services" in p.relative_to(PACKAGE).parts]
    assert services
    offenders = [str(p.relative_to(PACKAGE)) for p in services
                 if any(n == "kopf" or n.startswith("ferry.handlers") for n in _imports(p))]
    assert offenders == []


def test_only_settings_reads_ferry_environment_variables() -> None:
    offenders = [str(p.relative_to(PACKAGE)) for p in _modules()
                 if p.name != "settings.py" and "FERRY_" in p.read_text()
                 and "environ" in p.read_text()]
    assert offenders == []


def test_phase_tables_name_exactly_the_phases_the_crds_enumerate() -> None:
    assert phase_names(ClusterPhases) == set(get_args(ClusterPhase))
    assert phase_names(SnapshotPhases) == set(get_args(SnapshotPhase))
    assert phase_names(BackfillPhases) == set(get_args(BackfillPhase))


def test_settings_from_the_environment_with_typos_keeping_defaults() -> None:
    options = OperatorOptions.from_env({
        "FERRY_LEASE_SECONDS": "15", "FERRY_CLEANUP_TIMEOUT": "not-a-number",
        "FERRY_NAMESPACES": "a,b", "FERRY_LIVENESS_ENDPOINT": "",
        "FERRY_WORKER_IMAGE": "registry.example/ferry:1", "FERRY_METRICS_PORT": "9100"})
    assert options.lease_seconds == 15.0
    assert options.cleanup_timeout == OperatorOptions().cleanup_timeout
    assert options.namespaces == ["a", "b"]
    assert options.liveness_endpoint is None
    assert options.worker_image == "registry.example/ferry:1"
    assert options.metrics_port == 9100
    assert OperatorOptions.from_env({}) == OperatorOptions()
