"""The pure pieces of metadata migration: which items an allowlist selects, mapping
types made typeless, template bodies rebuilt, and the settings an engine refuses.

Free of I/O; unit-tested on their own (tests/unit/test_metadata_rules.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ferry.clients.engine import engine_name, version_tuple
from ferry.errors import InvalidSpec
from ferry.services.indices import is_system_index

# Never removed to make the target accept an item: without it the index is not the same
# index (a different shard count changes routing), so refusing is the honest answer.
PROTECTED_SETTINGS = frozenset({"index.number_of_shards"})
# Top-level keys of a typeless mapping; anything else at the top is a mapping type.
MAPPING_PARAMS = frozenset({"properties", "dynamic", "dynamic_templates", "date_detection",
                            "numeric_detection", "dynamic_date_formats", "runtime", "enabled"})


class Allowlist:
    """One kind's allowlist: exact names and ``regex:`` full-match patterns.

    None selects every item that is not a system one; a system item (dot-prefixed, or
    marked managed by its engine) is selected only by its exact name, so a broad regex
    never drags engine-owned templates into a migration.
    """

    def __init__(self, entries: list[str] | None, what: str) -> None:
        self.entries = entries
        self.names: set[str] = set()
        self.patterns: list[re.Pattern[str]] = []
        for entry in entries or []:
            if entry.startswith("regex:"):
                try:
                    self.patterns.append(re.compile(entry[len("regex:"):]))
                except re.error as exc:
                    raise InvalidSpec(f"metadata.allowlist.{what}: {entry!r} is not a valid "
                                      f"regular expression: {exc}") from None
            else:
                self.names.add(entry)

    def decide(self, name: str, system: bool) -> tuple[bool, str]:
        """(selected, why not) for one item."""
        if name in self.names:
            return True, ""
        if system:
            return False, "system item: excluded by default (name it exactly to include it)"
        if self.entries is None:
            return True, ""
        if any(p.fullmatch(name) for p in self.patterns):
            return True, ""
        return False, "not in the allowlist"


def is_system(name: str, body: Mapping[str, Any] | None = None) -> bool:
    """A system index name, or marked as managed by the engine (Elasticsearch's built-in
    ``logs``/``metrics``/``synthetics`` templates carry ``_meta.managed: true``)."""
    meta = (body or {}).get("_meta") or {}
    return is_system_index(name) or meta.get("managed") is True


TYPE_NAMES = frozenset({"_default_", "_doc"})


def mapping_types(mappings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The mapping types of a typed mapping (``{type: {properties…}}``), or None when
    the mapping is typeless. ``_default_`` (ES 5/6: a template for new types) is left out."""
    if not mappings:
        return None
    keys = set(mappings)
    # Meta fields (_source, _routing, _meta…) start with an underscore; so do two names
    # that are types, not fields: _default_ and _doc (ES 6's usual single type).
    if keys & MAPPING_PARAMS or any(k.startswith("_") and k not in TYPE_NAMES for k in keys):
        return None
    if not all(isinstance(v, Mapping) for v in mappings.values()):
        return None
    return {k: v for k, v in mappings.items() if k != "_default_"}


def type_changes(mappings: Mapping[str, Any]) -> list[str]:
    """What making a typed mapping typeless changes, for the report: the type names
    dropped, and a ``_default_`` mapping left out (Elasticsearch 5/6 merged it into each
    type when the type was created, so its fields are already in the types; what is lost
    is only its use for new types, which a typeless target has none of)."""
    types = mapping_types(mappings)
    if types is None:
        return []
    notes = [f"mapping type{'s' if len(types) > 1 else ''} "
             f"{', '.join(sorted(types))} made typeless"] if types else []
    if "_default_" in mappings:
        notes.append("the _default_ mapping was dropped (a typeless target has no mapping "
                     "types for it to apply to; its fields are in the type's mapping)")
    return notes


def merge_types(types: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Merge several mapping types into one typeless mapping: (mapping, conflicts)."""
    merged: dict[str, Any] = {}
    conflicts: list[str] = []

    def merge(into: dict[str, Any], new: Mapping[str, Any], path: str) -> None:
        for key, value in new.items():
            where = f"{path}{key}"
            if key not in into:
                into[key] = json.loads(json.dumps(value))
            elif isinstance(into[key], dict) and isinstance(value, Mapping):
                merge(into[key], value, f"{where}.")
            elif into[key] != value:
                conflicts.append(where)

    for body in types.values():
        merge(merged, body, "")
    return merged, sorted(set(conflicts))


def unify_mappings(mappings: Mapping[str, Any], multi_type: str) -> tuple[dict[str, Any],
                                                                         str | None]:
    """A typeless mapping for the target, or the reason there is none.

    One custom type (ES 6, or an include_type_name index read typed) becomes typeless;
    several types (ES 5 and earlier) need a choice: ``Merge`` merges their properties.
    """
    types = mapping_types(mappings)
    if types is None:
        return dict(mappings), None
    if len(types) <= 1:
        return (dict(next(iter(types.values()))) if types else {}), None
    names = ", ".join(sorted(types))
    if multi_type != "Merge":
        return {}, (f"has {len(types)} mapping types ({names}); a target index has one "
                    "typeless mapping: set metadata.multiTypeMappings to Merge to merge "
                    "them, or copy each type into its own index")
    merged, conflicts = merge_types(types)
    if conflicts:
        return {}, (f"its mapping types ({names}) define {', '.join(conflicts[:5])} "
                    "differently, so they cannot be merged")
    return merged, None


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(base))
    for key, value in over.items():
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = json.loads(json.dumps(value))
    return out


def rejected_settings(reason: str, settings: Mapping[str, Any]) -> list[str]:
    """The settings an engine's refusal names, among those we sent.

    Engines name a setting in brackets: ``unknown setting [index.x]``, ``Failed to parse
    value [v] for setting [index.x]``, ``… do not specify a value for setting [index.x]``.
    Only names we sent count (the bracketed "did you mean" suggestions do not).
    """
    found: list[str] = []
    for name in re.findall(r"\[([^\[\]\s]+)\]", reason):
        for key in (name, f"index.{name}"):
            if key in settings and key not in found and key not in PROTECTED_SETTINGS:
                found.append(key)
    return found


def at_shard_limit(reason: str) -> bool:
    """A refusal of index creation because the cluster holds the most shards it may
    (``cluster.max_shards_per_node``): "... this cluster currently has [1000]/[1000]
    maximum shards open" (Elasticsearch 8: "maximum normal shards open")."""
    return re.search(r"maximum (?:\w+ )?shards open", reason) is not None


def known_refusals(settings: Mapping[str, Any], engine: str, version: str
                   ) -> list[tuple[str, str]]:
    """Index settings the target is known to refuse at index creation but that template
    validation (what Evaluate can run without writing) accepts. Evaluate uses these to
    predict what Create will meet; Create itself learns from the real refusal."""
    out = []
    major = version_tuple(version)[0]
    modern = (engine == "opensearch" and major >= 2) or (engine == "elasticsearch"
                                                          and major >= 8)
    if modern and str(settings.get("index.soft_deletes.enabled", "true")).lower() == "false":
        out.append(("index.soft_deletes.enabled",
                    f"{engine_name(engine)} {version} refuses to create indices with soft "
                    "deletes disabled"))
    return out


def compose(components: Mapping[str, Mapping[str, Any]], names: list[str],
            settings: Mapping[str, Any], mappings: Mapping[str, Any]
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A composable template's settings and mappings on top of those of the component
    templates it is composed of (``names``, later ones overriding earlier ones, as the
    engine composes them)."""
    composed_settings: dict[str, Any] = {}
    composed_mappings: dict[str, Any] = {}
    for name in names:
        part = components.get(name) or {}
        composed_settings.update(part.get("settings") or {})
        composed_mappings = deep_merge(composed_mappings, part.get("mappings") or {})
    return {**composed_settings, **settings}, deep_merge(composed_mappings, mappings)


def with_parts(template: Mapping[str, Any], settings: dict[str, Any],
               mappings: dict[str, Any]) -> dict[str, Any]:
    """A template body with our settings and mappings, leaving out what the source left
    out (an empty ``settings: {}`` would show up on the target's GET)."""
    out = {k: v for k, v in template.items() if k not in ("settings", "mappings")}
    if settings or "settings" in template:
        out["settings"] = settings
    if mappings or "mappings" in template:
        out["mappings"] = mappings
    return out
