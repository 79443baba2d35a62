"""The committed CRDs are exactly what the models generate, and structurally sound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry import crdgen
from ferry.api import KINDS

CRDS = Path(__file__).resolve().parents[2] / "crds"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_committed_crd_matches_generator(kind: Any) -> None:
    committed = (CRDS / crdgen.file_name(kind)).read_text()
    assert committed == crdgen.render(kind), "crds/ is stale: run `make crds` and commit"


def test_no_stray_files_in_crds() -> None:
    assert sorted(p.name for p in CRDS.glob("*.yaml")) == sorted(
        crdgen.file_name(k) for k in KINDS)


def _walk(node: Any, path: str = "") -> Any:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural_and_documented(kind: Any) -> None:
    crd = yaml.safe_load(crdgen.render(kind))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert not {"$ref", "anyOf", "allOf", "oneOf", "title", "$defs"} & node.keys(), path
        assert "type" in node, f"{kind.kind}{path} has no type"
        if path.startswith((".spec", ".status")) and not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{kind.kind}{path} has no description"


def test_conditions_are_a_list_map_keyed_by_type() -> None:
    for kind in KINDS:
        crd = yaml.safe_load(crdgen.render(kind))
        conditions = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
            "properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert set(conditions["items"]["required"]) >= {
            "type", "status", "reason", "lastTransitionTime"}


def test_status_has_no_defaults() -> None:
    for kind in KINDS:
        crd = yaml.safe_load(crdgen.render(kind))
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert all("default" not in node for _, node in _walk(status)), kind.kind


def test_backfill_scale_subresource() -> None:
    backfill = next(k for k in KINDS if k.kind == "Backfill")
    version = yaml.safe_load(crdgen.render(backfill))["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.workers", "statusReplicasPath": ".status.workers",
        "labelSelectorPath": ".status.selector"}
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["workers"]["type"] == "integer"
    # The API server copies labelSelectorPath's value into Scale.status.selector, a string.
    assert status["selector"]["type"] == "string"


def _columns(kind: Any) -> dict[str, dict[str, Any]]:
    version = yaml.safe_load(crdgen.render(kind))["spec"]["versions"][0]
    return {c["name"]: c for c in version["additionalPrinterColumns"]}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_printer_columns_are_described_and_show_ready(kind: Any) -> None:
    columns = _columns(kind)
    assert all(c.get("description") for c in columns.values()), kind.kind
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Ready"].get("priority", 0) == 0


def test_backfill_and_snapshot_columns() -> None:
    by_kind = {k.kind: _columns(k) for k in KINDS}
    backfill, snapshot = by_kind["Backfill"], by_kind["Snapshot"]
    # Shown by default: who copies to whom, and figures with their units.
    default = [name for name, c in backfill.items() if not c.get("priority")]
    assert default[:3] == ["Source", "Target", "Phase"]
    assert backfill["ETA"]["jsonPath"] == ".status.progress.eta"
    assert backfill["Progress"]["jsonPath"] == ".status.progress.completion"
    assert backfill["Verified"]["jsonPath"] == \
        '.status.conditions[?(@.type=="Verified")].status'
    assert snapshot["Size"]["jsonPath"] == ".status.progress.size"
    assert snapshot["ETA"]["jsonPath"] == ".status.progress.eta"
    assert not snapshot["Size"].get("priority") and not snapshot["ETA"].get("priority")


def test_unsupported_union_is_refused() -> None:
    from pydantic import BaseModel

    class Bad(BaseModel):
        value: int | str

    with pytest.raises(crdgen.SchemaError):
        crdgen.model_schema(Bad)
