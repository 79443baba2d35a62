"""Generates structural apiextensions.k8s.io/v1 CRDs from the API models.

Pydantic emits JSON Schema 2020-12; a CRD wants a structural OpenAPI v3 subset: no
``$ref``, no ``anyOf`` for optionals, no ``title``, a type on every node. This module
turns one into the other and adds what only the CRD knows (subresources, printer
columns, names). The output is deterministic so a test can compare it byte for byte
with the committed ``crds/``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ferry.api import GROUP, KINDS, VERSION, KindInfo
from ferry.api.meta import CATEGORY

# Keys of JSON Schema that the structural OpenAPI subset keeps as they are.
_PASSTHROUGH = {
    "type", "description", "format", "enum", "default", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "minProperties", "maxProperties", "required", "nullable",
    "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
    "x-kubernetes-map-type",
}


class SchemaError(ValueError):
    """A model uses a construct the generator cannot express structurally."""


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$ref``/``allOf`` and collapse ``Optional`` unions, keeping sibling keys."""
    node = dict(node)
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node.pop("allOf")[0], **node}
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        resolved = _resolve(target, defs)
        merged = {**resolved, **node}
        # kubectl explain shows one description: say what the field is for, then what
        # its type is.
        if node.get("description") and resolved.get("description") and \
                resolved["description"] not in node["description"]:
            merged["description"] = f"{node['description']}\n\n{resolved['description']}"
        # Rules from the referenced model and from the field both apply.
        rules = target.get("x-kubernetes-validations", []) + node.get(
            "x-kubernetes-validations", [])
        if rules:
            merged["x-kubernetes-validations"] = rules
        node = merged
    if "anyOf" in node:
        variants = [v for v in node.pop("anyOf") if v.get("type") != "null"]
        if len(variants) != 1:
            raise SchemaError(f"unions other than Optional[X] are not structural: {variants}")
        inner = _resolve(variants[0], defs)
        description = node.get("description") or inner.get("description", "")
        if node.get("description") and inner.get("description") and \
                inner["description"] not in node["description"]:
            description = f"{node['description']}\n\n{inner['description']}"
        node = {**inner, **{k: v for k, v in node.items() if k != "description"},
                "description": description}
        if node.get("default", "unset") is None:
            node.pop("default")
    if node.get("default", "unset") is None:
        node.pop("default")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    return node


def to_structural(node: dict[str, Any], defs: dict[str, Any], *, status: bool = False
                  ) -> dict[str, Any]:
    """Convert one (sub)schema. ``status`` drops defaults: status is the operator's to
    write, and a defaulted status field would show values nobody observed."""
    node = _resolve(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _PASSTHROUGH:
            out[key] = value
        elif key in {"title", "$defs", "additionalProperties", "properties", "items",
                     "uniqueItems"}:
            continue
        else:
            raise SchemaError(f"unsupported schema keyword {key!r}")
    if status:
        out.pop("default", None)
    if "properties" in node:
        out["properties"] = {
            name: to_structural(sub, defs, status=status)
            for name, sub in node["properties"].items()
        }
        out["type"] = "object"
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = to_structural(node["additionalProperties"], defs,
                                                    status=status)
        out["type"] = "object"
    if "items" in node:
        out["items"] = to_structural(node["items"], defs, status=status)
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        raise SchemaError(f"schema node without a type: {node}")
    if out.get("type") == "object" and "required" in out and not out["required"]:
        out.pop("required")
    return _ordered(out)


_FIRST = ("type", "description")
_LAST = ("required", "properties", "additionalProperties", "items")


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """A stable, readable key order: type and description first, children last."""
    middle = sorted(k for k in node if k not in _FIRST and k not in _LAST)
    return {k: node[k] for k in (*_FIRST, *middle, *_LAST) if k in node}


def model_schema(model: Any, *, status: bool = False) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return to_structural(raw, defs, status=status)


def _column(col: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": col.name, "type": col.type, "jsonPath": col.json_path}
    if col.description:
        out["description"] = col.description
    if col.priority:
        out["priority"] = col.priority
    if col.format:
        out["format"] = col.format
    return out


def crd_for(kind: KindInfo) -> dict[str, Any]:
    spec = model_schema(kind.spec)
    spec["description"] = spec.get("description") or f"Desired state of the {kind.kind}."
    if kind.spec_validations:
        spec.setdefault("x-kubernetes-validations", []).extend(copy.deepcopy(
            list(kind.spec_validations)))
    status = model_schema(kind.status, status=True)
    schema = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if kind.object_validations:
        schema["x-kubernetes-validations"] = copy.deepcopy(list(kind.object_validations))
    subresources: dict[str, Any] = {"status": {}}
    if kind.scale:
        scale = {"specReplicasPath": kind.scale.spec_replicas_path,
                 "statusReplicasPath": kind.scale.status_replicas_path}
        if kind.scale.label_selector_path:
            scale["labelSelectorPath"] = kind.scale.label_selector_path
        subresources["scale"] = scale
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/name": "ferry", "app.kubernetes.io/part-of": "ferry"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": schema},
                "subresources": subresources,
                "additionalPrinterColumns": [_column(c) for c in kind.printer_columns],
            }],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases, long descriptions kept on one line per paragraph."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def render(kind: KindInfo) -> str:
    header = "# Generated by `ferry crds` from operator/ferry/api. Do not edit.\n"
    body = yaml.dump(crd_for(kind), Dumper=_Dumper, sort_keys=False, width=100,
                     default_flow_style=False, allow_unicode=True)
    return header + body


def file_name(kind: KindInfo) -> str:
    return f"{GROUP}_{kind.plural}.yaml"


def write_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = out_dir / file_name(kind)
        path.write_text(render(kind))
        written.append(path)
    return written
