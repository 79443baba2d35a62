"""MetadataService: templates, index settings and mappings, and aliases moved from a
source to a target, in dependency order, with a report of every item.

Modes: Create makes what is missing and never overwrites anything; Evaluate writes
nothing and reports what Create would do (validating bodies with the target's template
simulation where it has one); Skip only creates the indices a copy needs.

Order: legacy templates, component templates, composable index templates (they may use
component templates), indices (settings, mappings, with their aliases in the creation
request), then aliases of indices that already existed. Templates come before indices
because a target template matching a created index applies to it, as on the source.

Free of kopf; the pure transforms at the top are unit-tested on their own.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy import exceptions as os_exc

from ferry.api.backfill import BackfillSpec, MetadataAllowlist
from ferry.clients.search import classify
from ferry.conditions import now
from ferry.errors import FerryError, InvalidSpec
from ferry.services import indices as idx
from ferry.services.cluster.service import engine_of

log = logging.getLogger("ferry.metadata")

META_KEY = "ferry.dev/backfill"  # the same mark BackfillService puts on its indices
MAX_ITEMS = 100  # status.metadata.items bound
EARLIER = "created by this Backfill earlier"
MAX_REMOVALS = 20  # settings removed from one item before giving up on it
# Never removed to make the target accept an item: without it the index is not the same
# index (a different shard count changes routing), so refusing is the honest answer.
PROTECTED_SETTINGS = frozenset({"index.number_of_shards"})
# Top-level keys of a typeless mapping; anything else at the top is a mapping type.
MAPPING_PARAMS = frozenset({"properties", "dynamic", "dynamic_templates", "date_detection",
                            "numeric_detection", "dynamic_date_formats", "runtime", "enabled"})

LEGACY, COMPONENT, COMPOSABLE, INDEX, ALIAS = ("LegacyTemplate", "ComponentTemplate",
                                               "IndexTemplate", "Index", "Alias")
# Report order when the list is cut: problems, then changes, then the rest.
ACTION_RANK = {"TargetRejected": 0, "Incompatible": 1, "Created": 2, "WouldCreate": 2,
               "AlreadyExists": 3, "Skipped": 4}


# -- pure pieces ---------------------------------------------------------------------------


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
    """Dot-prefixed, or marked as managed by the engine (Elasticsearch's built-in
    ``logs``/``metrics``/``synthetics`` templates carry ``_meta.managed: true``)."""
    meta = (body or {}).get("_meta") or {}
    return name.startswith(".") or meta.get("managed") is True


def mapping_types(mappings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The mapping types of a typed mapping (``{type: {properties…}}``), or None when
    the mapping is typeless. ``_default_`` (ES 5/6: a template for new types) is left out."""
    if not mappings:
        return None
    keys = set(mappings)
    if keys & MAPPING_PARAMS or any(k.startswith("_") and k != "_default_" for k in keys):
        return None
    if not all(isinstance(v, Mapping) for v in mappings.values()):
        return None
    return {k: v for k, v in mappings.items() if k != "_default_"}


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


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in re.split(r"[.-]", version)[:3]:
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts) or (0,)


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


def engine_name(engine: str) -> str:
    return "OpenSearch" if engine == "opensearch" else "Elasticsearch"


def engine_reason(exc: os_exc.TransportError) -> str:
    """The most specific reason in an engine's error answer: the deepest caused_by."""
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    if not isinstance(error, dict):
        return str(exc.error)
    node, best = error, error
    while isinstance(node, dict):
        if node.get("reason"):
            best = node
        node = node.get("caused_by")
    root = (error.get("root_cause") or [{}])[0]
    text = f"{best.get('type', '')}: {best.get('reason', '')}".strip(": ")
    # A refusal of several settings names them in the top reason only.
    if root.get("reason") and "setting [" in str(root.get("reason")) \
            and "setting [" not in text:
        text = f"{root.get('type', '')}: {root['reason']}"
    return text


DETERMINISTIC = frozenset({"illegal_state_exception", "illegal_argument_exception",
                           "mapper_parsing_exception", "invalid_alias_name_exception",
                           "invalid_index_name_exception", "invalid_index_template_exception",
                           "resource_already_exists_exception"})


def _error_type(exc: os_exc.TransportError) -> str:
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    return str(error.get("type", "")) if isinstance(error, dict) else ""


def error_text(exc: os_exc.TransportError) -> str:
    """Every reason in the answer, for finding setting names."""
    return json.dumps(exc.info) if isinstance(exc.info, dict) else str(exc.error)


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


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# -- the report ------------------------------------------------------------------------------


@dataclass
class Item:
    kind: str
    name: str
    action: str
    reason: str | None = None
    target: str | None = None
    removed: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str | None]:
        return self.kind, self.name, self.target

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "action": self.action}
        if self.target is not None:
            out["target"] = self.target
        if self.reason:
            out["reason"] = self.reason[:1024]
        if self.removed:
            out["removedSettings"] = self.removed[:20]
        return out


@dataclass
class MetadataResult:
    mode: str
    items: list[Item] = field(default_factory=list)

    def add(self, item: Item) -> Item:
        self.items.append(item)
        return item

    def counts(self) -> dict[str, int]:
        names = {"Created": "created", "WouldCreate": "wouldCreate",
                 "AlreadyExists": "alreadyExists", "Skipped": "skipped",
                 "Incompatible": "incompatible", "TargetRejected": "targetRejected"}
        out = dict.fromkeys(names.values(), 0)
        for item in self.items:
            out[names[item.action]] += 1
        return out

    def blocking(self) -> list[Item]:
        """Index items that keep the Backfill from copying."""
        return [i for i in self.items if i.kind == INDEX
                and i.action in ("Incompatible", "TargetRejected")]

    def summary(self) -> str:
        counts = self.counts()
        words = {"created": "created", "wouldCreate": "would be created",
                 "alreadyExists": "already exist", "skipped": "skipped",
                 "incompatible": "incompatible", "targetRejected": "rejected by the target"}
        parts = [f"{n} {words[k]}" for k, n in counts.items() if n]
        removed = sum(len(i.removed) for i in self.items)
        if removed:
            parts.append(f"{removed} rejected settings removed")
        return ", ".join(parts) or "nothing to migrate"

    def report(self) -> dict[str, Any]:
        items = self.items
        if len(items) > MAX_ITEMS:
            order = {id(item): n for n, item in enumerate(items)}
            items = sorted(items, key=lambda i: (ACTION_RANK[i.action], order[id(i)]))
            items = items[:MAX_ITEMS]
        return {"mode": self.mode, "time": now(), "counts": self.counts(),
                "itemsTotal": len(self.items), "items": [i.to_wire() for i in items]}


class Refused(FerryError):
    """A cluster refused a request (4xx): what it said, and the full answer. Caught
    where a refusal is an answer (an item the target rejects); one that escapes (an
    unexpected refusal of a read) fails the Backfill with the engine's reason."""

    code = "EngineError"
    retryable = False

    def __init__(self, reason: str, text: str, status: int) -> None:
        super().__init__(f"HTTP {status}: {reason}")
        self.reason, self.text, self.status = reason, text, status


# -- the service -----------------------------------------------------------------------------


class MetadataService:
    """Moves metadata from ``source`` to ``target``. Blocking; every call can raise a
    retryable FerryError (unreachable, 5xx) that the caller retries as a whole: each step
    is idempotent because nothing that exists is ever overwritten."""

    def __init__(self, source: OpenSearch, target: OpenSearch, source_url: str,
                 target_url: str, spec: BackfillSpec, uid: str) -> None:
        self.source, self.target = source, target
        self.source_url, self.target_url = source_url, target_url
        self.spec = spec
        self.uid = uid
        allow: MetadataAllowlist = spec.metadata.allowlist
        self.allow = {LEGACY: Allowlist(allow.legacy_templates, "legacyTemplates"),
                      COMPONENT: Allowlist(allow.component_templates, "componentTemplates"),
                      COMPOSABLE: Allowlist(allow.index_templates, "indexTemplates"),
                      ALIAS: Allowlist(allow.aliases, "aliases")}
        self.target_engine = ""
        self.target_version = ""
        self._sim_prefix = f"ferry-evaluate-{uuid.uuid4().hex[:12]}"
        # (target index, alias) → why the target refused the alias at index creation.
        self._alias_refusals: dict[tuple[str, str], str] = {}

    # -- requests ----------------------------------------------------------------------------

    def _call(self, client: OpenSearch, url: str, method: str, path: str, *,
              params: dict[str, Any] | None = None, body: Any = None) -> Any:
        """A request; 404 → None; other 4xx → Refused; the rest → classified FerryError."""
        try:
            return client.transport.perform_request(method, path, params=params, body=body)
        except os_exc.NotFoundError:
            return None
        except os_exc.TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            refused = 400 <= status < 500 and status not in (401, 403, 408, 429)
            # Some refusals come back as HTTP 500 (e.g. an alias that would get a second
            # write index is an illegal_state_exception): not transient either.
            refused = refused or (status == 500 and _error_type(exc) in DETERMINISTIC)
            if refused:
                raise Refused(engine_reason(exc), error_text(exc), status) from None
            raise classify(exc, url) from None
        except Exception as exc:
            raise classify(exc, url) from None

    def _src(self, method: str, path: str, **kw: Any) -> Any:
        return self._call(self.source, self.source_url, method, path, **kw)

    def _tgt(self, method: str, path: str, **kw: Any) -> Any:
        return self._call(self.target, self.target_url, method, path, **kw)

    def _src_list(self, path: str, key: str, inner: str) -> dict[str, Any] | None:
        """Component or composable templates by name; None if the engine has none of
        them (Elasticsearch before 7.8 answers 400/404/405 to these paths)."""
        try:
            got = self._src("GET", path)
        except Refused:
            return None
        if got is None:
            return {}
        return {t["name"]: t[inner] for t in got.get(key) or []}

    def _tgt_names(self, path: str, key: str | None) -> set[str] | None:
        try:
            got = self._tgt("GET", path)
        except Refused:
            return None
        if got is None:
            return set()
        if key is None:
            return set(got)
        return {t["name"] for t in got.get(key) or []}

    # -- creation with rejected settings removed --------------------------------------------

    def _create(self, item: Item, settings: dict[str, Any],
                put: Callable[[dict[str, Any]], None],
                fix: Callable[[Refused], bool] | None = None) -> bool:
        """Create with ``put``; when the target refuses settings by name, remove them,
        report each, and try again. ``fix`` may mend other refusals (True: try again).
        False (item TargetRejected or AlreadyExists) otherwise."""
        for _ in range(MAX_REMOVALS + 1):
            try:
                put(settings)
                return True
            except Refused as refusal:
                if "already_exists" in refusal.text or "already exists" in refusal.text:
                    item.action, item.reason = "AlreadyExists", "created meanwhile by " \
                        "someone else; left as it is"
                    return False
                names = rejected_settings(refusal.text, settings)
                if not names and fix is not None and fix(refusal):
                    continue
                if not names:
                    item.action, item.reason = "TargetRejected", refusal.reason
                    return False
                for name in names:
                    settings.pop(name)
                    item.removed.append(name)
                item.reason = f"the target rejected {', '.join(item.removed)}: " \
                    f"{refusal.reason}; removed and retried"
        item.action = "TargetRejected"
        item.reason = f"the target kept rejecting settings; removed {len(item.removed)}"
        return False

    def _simulate(self, item: Item, settings: dict[str, Any], mappings: Mapping[str, Any],
                  aliases: Mapping[str, Any] | None, index_creation: bool) -> None:
        """Evaluate mode: validate a body with ``_index_template/_simulate``, which writes
        nothing, removing refused settings as Create would."""
        notes: list[str] = []
        if index_creation:
            for name, why in known_refusals(settings, self.target_engine,
                                            self.target_version):
                settings.pop(name, None)
                item.removed.append(name)
                notes.append(f"{name} ({why})")
        known = len(item.removed)
        item.action = "WouldCreate"
        if notes:
            item.reason = f"the target would reject {'; '.join(notes)}: Create removes " \
                "such settings and retries"
        if not self._can_simulate():
            item.reason = item.reason or "not validated: the target cannot simulate " \
                "templates (Elasticsearch before 7.9)"
            return

        def put(current: dict[str, Any]) -> None:
            template: dict[str, Any] = {"settings": current, "mappings": mappings}
            if aliases:
                template["aliases"] = aliases
            self._tgt("POST", "/_index_template/_simulate", body={
                "index_patterns": [f"{self._sim_prefix}-*"], "priority": 2_000_000_000,
                "template": template})

        if self._create(item, settings, put):
            item.action = "WouldCreate"
            if len(item.removed) > known:
                notes.append(f"{', '.join(item.removed[known:])} ({item.reason})")
            if notes:
                item.reason = f"the target would reject {'; '.join(notes)}: Create " \
                    "removes them and retries"

    def _can_simulate(self) -> bool:
        if self.target_engine == "opensearch":
            return True
        return version_tuple(self.target_version) >= (7, 9)

    # -- the run -----------------------------------------------------------------------------

    def run(self, mode: str, indices: Iterable[tuple[str, str]], *,
            templates: bool = True, method: str = "copy") -> MetadataResult:
        """Migrate (or evaluate) metadata for the (source, target) index pairs."""
        result = MetadataResult(mode)
        engine, _, version = engine_of(self._tgt("GET", "/") or {})
        self.target_engine, self.target_version = engine, version
        evaluate = mode == "Evaluate"
        pairs = list(indices)
        metas = {source: (self._src("GET", f"/{_quote(source)}") or {}).get(source) or {}
                 for source, _ in pairs}
        if not evaluate:
            # An index that cannot be migrated stops the Backfill: find out before
            # anything is written, so a refused migration leaves the target untouched.
            problems = [(s, t, self._problem(metas[s], method)) for s, t in pairs]
            if any(p for _, _, p in problems):
                for source, target, problem in problems:
                    if problem:
                        result.add(Item(INDEX, source, "Incompatible", problem, target=target))
                return result
        if mode != "Skip" and templates:
            self._legacy_templates(result, evaluate)
            components = self._component_templates(result, evaluate)
            self._composable_templates(result, evaluate, components)
        created: dict[str, Item] = {}
        for source, target in pairs:
            created[source] = self._index(result, source, target, metas[source], mode,
                                          method)
        if mode != "Skip":
            for source, target in pairs:
                self._aliases(result, source, target, created[source], evaluate)
        return result

    def _legacy_templates(self, result: MetadataResult, evaluate: bool) -> None:
        found = self._src("GET", "/_template") or {}
        existing = self._tgt_names("/_template", None) or set()
        for name in sorted(found):
            body = dict(found[name])
            item = self._template_item(result, LEGACY, name, body, existing)
            if item is None:
                continue
            if "index_patterns" not in body and isinstance(body.get("template"), str):
                body["index_patterns"] = [body.pop("template")]  # Elasticsearch 5.x
            mappings, problem = unify_mappings(body.get("mappings") or {},
                                               self.spec.metadata.multi_type_mappings)
            if problem:
                item.action, item.reason = "Incompatible", f"the template {problem}"
                continue
            settings = idx.creatable_settings(body.get("settings") or {}, None)
            rest = {k: v for k, v in body.items() if k in ("index_patterns", "order",
                                                           "version")}
            if evaluate:
                self._simulate(item, settings, mappings, body.get("aliases"), False)
                continue

            def put(current: dict[str, Any], name: str = name, rest: dict[str, Any] = rest,
                    mappings: dict[str, Any] = mappings, body: dict[str, Any] = body) -> None:
                self._tgt("PUT", f"/_template/{_quote(name)}", params={"create": "true"},
                          body={**rest, "settings": current, "mappings": mappings,
                                "aliases": body.get("aliases") or {}})

            if self._create(item, settings, put):
                item.action = "Created"

    def _template_item(self, result: MetadataResult, kind: str, name: str,
                       body: Mapping[str, Any], existing: set[str]) -> Item | None:
        """The item for one template, or None when it is settled by selection or
        existence alone."""
        selected, why = self.allow[kind].decide(name, is_system(name, body))
        if not selected:
            result.add(Item(kind, name, "Skipped", why))
            return None
        if name in existing:
            result.add(Item(kind, name, "AlreadyExists", "exists on the target; left as it is"))
            return None
        return result.add(Item(kind, name, "Created"))

    def _component_templates(self, result: MetadataResult, evaluate: bool
                             ) -> dict[str, dict[str, Any]]:
        """Returns the component templates that exist on the target after this step
        (or would, in Evaluate mode), with their bodies as the source has them."""
        found = self._src_list("/_component_template", "component_templates",
                               "component_template") or {}
        existing = self._tgt_names("/_component_template", "component_templates")
        available: dict[str, dict[str, Any]] = {n: {} for n in existing or ()}
        for name in sorted(found):
            body = found[name]
            if existing is None:
                selected, why = self.allow[COMPONENT].decide(name, is_system(name, body))
                result.add(Item(COMPONENT, name, "Skipped" if not selected else "Incompatible",
                                why or "the target has no component templates"))
                continue
            item = self._template_item(result, COMPONENT, name, body, existing)
            if item is None:
                continue
            template = dict(body.get("template") or {})
            mappings, problem = unify_mappings(template.get("mappings") or {},
                                               self.spec.metadata.multi_type_mappings)
            if problem:
                item.action, item.reason = "Incompatible", f"the template {problem}"
                continue
            settings = idx.creatable_settings(template.get("settings") or {}, None)
            if evaluate:
                self._simulate(item, settings, mappings, template.get("aliases"), False)
            else:
                def put(current: dict[str, Any], name: str = name,
                        body: Mapping[str, Any] = body, template: dict[str, Any] = template,
                        mappings: dict[str, Any] = mappings) -> None:
                    new = with_parts(template, current, mappings)
                    self._tgt("PUT", f"/_component_template/{_quote(name)}",
                              params={"create": "true"}, body={**body, "template": new})

                if self._create(item, settings, put):
                    item.action = "Created"
            if item.action in ("Created", "WouldCreate"):
                available[name] = {"settings": settings, "mappings": mappings}
        return available

    def _composable_templates(self, result: MetadataResult, evaluate: bool,
                              components: dict[str, dict[str, Any]]) -> None:
        found = self._src_list("/_index_template", "index_templates", "index_template") or {}
        existing = self._tgt_names("/_index_template", "index_templates")
        for name in sorted(found):
            body = found[name]
            if existing is None:
                selected, why = self.allow[COMPOSABLE].decide(name, is_system(name, body))
                result.add(Item(COMPOSABLE, name, "Skipped" if not selected else "Incompatible",
                                why or "the target has no composable index templates"))
                continue
            item = self._template_item(result, COMPOSABLE, name, body, existing)
            if item is None:
                continue
            missing = [c for c in body.get("composed_of") or [] if c not in components]
            if missing:
                item.action = "Incompatible"
                item.reason = (f"it is composed of {', '.join(missing)}, which the target "
                               "does not have and this migration does not create (see the "
                               "componentTemplates allowlist)")
                continue
            template = dict(body.get("template") or {})
            mappings, problem = unify_mappings(template.get("mappings") or {},
                                               self.spec.metadata.multi_type_mappings)
            if problem:
                item.action, item.reason = "Incompatible", f"the template {problem}"
                continue
            settings = idx.creatable_settings(template.get("settings") or {}, None)
            if evaluate:
                # The components may not exist on the target yet: validate the composition.
                composed_settings: dict[str, Any] = {}
                composed_mappings: dict[str, Any] = {}
                for component in body.get("composed_of") or []:
                    part = components.get(component) or {}
                    composed_settings.update(part.get("settings") or {})
                    composed_mappings = deep_merge(composed_mappings,
                                                   part.get("mappings") or {})
                before = dict(settings)
                merged = {**composed_settings, **settings}
                self._simulate(item, merged, deep_merge(composed_mappings, mappings),
                               template.get("aliases"), False)
                # Report only the template's own settings as removed.
                item.removed = [r for r in item.removed if r in before]
                continue

            def put(current: dict[str, Any], name: str = name, body: Mapping[str, Any] = body,
                    template: dict[str, Any] = template,
                    mappings: dict[str, Any] = mappings) -> None:
                new = with_parts(template, current, mappings)
                self._tgt("PUT", f"/_index_template/{_quote(name)}", params={"create": "true"},
                          body={**body, "template": new})

            if self._create(item, settings, put):
                item.action = "Created"

    def _problem(self, meta: Mapping[str, Any], method: str) -> str | None:
        """Why an index cannot be migrated as it is, or None."""
        mappings, problem = unify_mappings(meta.get("mappings") or {},
                                           self.spec.metadata.multi_type_mappings)
        if problem:
            return f"the index {problem}"
        if method == "copy" and (mappings.get("_source") or {}).get("enabled") is False:
            return ("_source is disabled: the copy method reads documents back from "
                    "_source, so they cannot be copied; use method restore, or exclude "
                    "the index")
        return None

    def _index(self, result: MetadataResult, source: str, target: str,
               got: Mapping[str, Any], mode: str, method: str) -> Item:
        item = result.add(Item(INDEX, source, "Created", target=target))
        problem = self._problem(got, method)
        if problem:
            item.action, item.reason = "Incompatible", problem
            return item
        mappings, _ = unify_mappings(got.get("mappings") or {},
                                     self.spec.metadata.multi_type_mappings)
        source_field = mappings.get("_source") or {}
        if method == "copy" and (source_field.get("excludes") or source_field.get("includes")):
            item.reason = ("fields left out of _source are not copied (_source "
                           "includes/excludes)")
        existing = self._tgt("GET", f"/{_quote(target)}/_mapping")
        if existing is not None:
            mark = (next(iter(existing.values()), {}).get("mappings", {}).get("_meta") or {}
                    ).get(META_KEY)
            if mark == self.uid:
                item.reason = EARLIER
                return item
            item.action = "AlreadyExists"
            item.reason = "exists on the target; left as it is"
            if mode == "Evaluate" and self.spec.on_conflict is None:
                count = (self._tgt("GET", f"/{_quote(target)}/_count") or {}).get("count", 0)
                if count:
                    item.reason += (f"; it holds {count} documents, so the copy would stop "
                                    "(TargetIndexNotEmpty) unless onConflict is set")
            return item
        settings = idx.creatable_settings(got.get("settings") or {},
                                          self.spec.metadata.target_replicas)
        mappings["_meta"] = {**(mappings.get("_meta") or {}), META_KEY: self.uid}
        aliases = self._selected_aliases(got.get("aliases") or {}) if mode != "Skip" else {}
        if mode == "Evaluate":
            self._simulate(item, settings, mappings, aliases, True)
            return item

        def put(current: dict[str, Any]) -> None:
            self._tgt("PUT", f"/{_quote(target)}", body={
                "settings": current, "mappings": mappings, "aliases": aliases})

        def drop_alias(refusal: Refused) -> bool:
            """An alias the target refuses (e.g. a second write index) must not keep the
            index from being created: leave it out and report it."""
            for name in re.findall(r"alias \[([^\]]+)\]", refusal.text):
                if name in aliases:
                    aliases.pop(name)
                    self._alias_refusals[(target, name)] = refusal.reason
                    return True
            return False

        if self._create(item, settings, put, drop_alias):
            log.info("created index %s on %s (%d settings removed)", target, self.target_url,
                     len(item.removed))
        elif item.action == "AlreadyExists":
            item.action = "TargetRejected"
            item.reason = f"{target} was created on the target by someone else meanwhile"
        return item

    def _selected_aliases(self, aliases: Mapping[str, Any]) -> dict[str, Any]:
        return {name: body for name, body in aliases.items()
                if self.allow[ALIAS].decide(name, is_system(name))[0]}

    def _aliases(self, result: MetadataResult, source: str, target: str, index: Item,
                 evaluate: bool) -> None:
        got = (self._src("GET", f"/{_quote(source)}/_alias") or {}).get(source) or {}
        for name, body in sorted((got.get("aliases") or {}).items()):
            selected, why = self.allow[ALIAS].decide(name, is_system(name))
            if not selected:
                result.add(Item(ALIAS, name, "Skipped", why, target=target))
                continue
            ours_earlier = index.reason == EARLIER
            if index.action in ("Created", "WouldCreate") and not ours_earlier:
                refused = self._alias_refusals.get((target, name))
                if refused is not None:
                    result.add(Item(ALIAS, name, "TargetRejected", refused, target=target))
                else:
                    result.add(Item(ALIAS, name, index.action, f"with index {target}",
                                    target=target))
                continue
            if index.action in ("Incompatible", "TargetRejected"):
                result.add(Item(ALIAS, name, "Incompatible", f"index {target} is not created",
                                target=target))
                continue
            present = self._tgt("GET", f"/{_quote(target)}/_alias/{_quote(name)}")
            if present and ours_earlier:
                result.add(Item(ALIAS, name, "Created", f"with index {target} ({EARLIER})",
                                target=target))
                continue
            if present:
                result.add(Item(ALIAS, name, "AlreadyExists",
                                f"{target} already has this alias; left as it is",
                                target=target))
                continue
            item = result.add(Item(ALIAS, name, "WouldCreate" if evaluate else "Created",
                                   target=target))
            if evaluate:
                continue
            try:
                self._tgt("POST", "/_aliases", body={"actions": [
                    {"add": {**body, "index": target, "alias": name}}]})
            except Refused as refusal:
                item.action, item.reason = "TargetRejected", refusal.reason
