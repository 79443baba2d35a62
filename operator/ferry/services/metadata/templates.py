"""The three kinds of template a metadata migration moves (legacy, component and
composable index templates), each described by a :class:`TemplateKind`: how it is listed,
read and written, so that one path in ``service`` handles them all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ferry.services.metadata import mappings as transforms
from ferry.services.metadata.report import COMPONENT, COMPOSABLE, LEGACY


@dataclass(frozen=True)
class TemplateKind:
    """How one kind of template is listed, read and written."""

    kind: str  # the report's item kind
    path: str  # GET lists them, PUT <path>/<name> creates one
    key: str | None  # where the list is in the answer; None: the answer maps name → body
    inner: str | None  # where a list entry keeps its body
    # Why a target that refuses the listing has none of them; None: every engine has
    # this kind (a refused listing on the source fails the run, on the target is empty).
    absent: str | None
    nested: bool  # settings, mappings and aliases under the body's ``template``
    composed: bool = False  # made of component templates (``composed_of``)

    def parts(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """Where the body keeps its settings, mappings and aliases."""
        return dict(body.get("template") or {}) if self.nested else body

    def put_body(self, body: Mapping[str, Any], parts: Mapping[str, Any],
                 settings: dict[str, Any], mappings: dict[str, Any]) -> dict[str, Any]:
        """The body to create it with, carrying our settings and mappings."""
        if self.nested:
            return {**body, "template": transforms.with_parts(parts, settings, mappings)}
        rest = {k: v for k, v in body.items() if k in ("index_patterns", "order", "version")}
        if "index_patterns" not in body and isinstance(body.get("template"), str):
            rest["index_patterns"] = [body["template"]]  # Elasticsearch 5.x
        return {**rest, "settings": settings, "mappings": mappings,
                "aliases": body.get("aliases") or {}}


LEGACY_TEMPLATES = TemplateKind(LEGACY, "/_template", None, None, absent=None, nested=False)
# Elasticsearch before 7.8 has no component or composable templates (400/404/405).
COMPONENT_TEMPLATES = TemplateKind(
    COMPONENT, "/_component_template", "component_templates", "component_template",
    absent="the target has no component templates", nested=True)
COMPOSABLE_TEMPLATES = TemplateKind(
    COMPOSABLE, "/_index_template", "index_templates", "index_template",
    absent="the target has no composable index templates", nested=True, composed=True)
