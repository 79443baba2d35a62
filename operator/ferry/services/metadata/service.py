"""MetadataService: templates, index settings and mappings, and aliases moved from a
source to a target, in dependency order, with a report of every item.

Modes: Create makes what is missing and never overwrites anything; Evaluate writes
nothing and reports what Create would do (validating bodies with the target's template
simulation where it has one); Skip only creates the indices a copy needs.

Order: legacy templates, component templates, composable index templates (they may use
component templates), indices (settings, mappings, with their aliases in the creation
request), then aliases of indices that already existed. Templates come before indices
because a target template matching a created index applies to it, as on the source.
The three template kinds take one path, driven by a :class:`TemplateKind` each
(``templates``). Indices are created a few at a time (``waves``: a refusal at the
target's shard limit stops the rest) without waiting for their shards one by one; their
primaries are waited for together at the end.

Free of kopf; every request goes through the engine layer. The pure transforms live in
``mappings``, the report in ``report``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from ferry.api.backfill import BackfillSpec, MetadataAllowlist
from ferry.clients.engine import Engine, Refused, quote
from ferry.services import indices as idx
from ferry.services.indices import META_KEY
from ferry.services.metadata import mappings as transforms
from ferry.services.metadata.report import (
    ALIAS,
    COMPONENT,
    COMPOSABLE,
    INDEX,
    LEGACY,
    Item,
    MetadataResult,
)
from ferry.services.metadata.targets import copy_problem, modernize
from ferry.services.metadata.templates import (
    COMPONENT_TEMPLATES,
    COMPOSABLE_TEMPLATES,
    LEGACY_TEMPLATES,
    TemplateKind,
)
from ferry.services.metadata.waves import CREATIONS_IN_FLIGHT, in_waves

log = logging.getLogger("ferry.metadata")

EARLIER = "created by this Backfill earlier"
MAX_REMOVALS = 20  # settings removed from one item before giving up on it


def _note(item: Item, notes: list[str]) -> None:
    """Add what a transform changed to the item's reason, after what is there."""
    if notes:
        item.reason = "; ".join([item.reason, *notes] if item.reason else notes)


class MetadataService:
    """Moves metadata from ``source`` to ``target``. Blocking; every call can raise a
    retryable FerryError (unreachable, 5xx) that the caller retries as a whole: each step
    is idempotent because nothing that exists is ever overwritten. A :class:`Refused`
    that escapes (an unexpected refusal of a read) fails the Backfill with the engine's
    reason."""

    def __init__(self, source: Engine, target: Engine, spec: BackfillSpec, uid: str) -> None:
        self.source, self.target = source, target
        self.spec = spec
        self.uid = uid
        allow: MetadataAllowlist = spec.metadata.allowlist
        self.allow = {kind: transforms.Allowlist(entries, what) for kind, entries, what in (
            (LEGACY, allow.legacy_templates, "legacyTemplates"),
            (COMPONENT, allow.component_templates, "componentTemplates"),
            (COMPOSABLE, allow.index_templates, "indexTemplates"),
            (ALIAS, allow.aliases, "aliases"))}
        self._sim_prefix = f"ferry-evaluate-{uuid.uuid4().hex[:12]}"
        # (target index, alias) → why the target refused the alias at index creation.
        self._alias_refusals: dict[tuple[str, str], str] = {}
        # The target indices' mappings, read in groups by run() before any _index().
        self._existing: idx.Mappings | None = None
        # Why no further index is created: the target refused one at its shard limit.
        self._shard_limit: str | None = None

    def _selected(self, kind: str, name: str, body: Mapping[str, Any] | None = None
                  ) -> tuple[bool, str]:
        """(selected, why not) for one item, by its kind's allowlist."""
        return self.allow[kind].decide(name, transforms.is_system(name, body))

    def _listing(self, engine: Engine, kind: TemplateKind, refusable: bool
                 ) -> dict[str, Any] | None:
        """One kind's templates on ``engine`` by name; None when it refuses the listing
        (and ``refusable``)."""
        try:
            got = engine.request("GET", kind.path)
        except Refused:
            if not refusable:
                raise
            return None
        if got is None:
            return {}
        if kind.key is None:
            return dict(got)
        return {t["name"]: t[kind.inner] for t in got.get(kind.key) or []}

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
                names = transforms.rejected_settings(refusal.text, settings)
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
            info = self.target.info()
            for name, why in transforms.known_refusals(settings, info.engine, info.version):
                settings.pop(name, None)
                item.removed.append(name)
                notes.append(f"{name} ({why})")
        known = len(item.removed)
        item.action = "WouldCreate"
        if notes:
            item.reason = f"the target would reject {'; '.join(notes)}: Create removes " \
                "such settings and retries"
        if not self.target.info().at_least((7, 9)):
            item.reason = item.reason or "not validated: the target cannot simulate " \
                "templates (Elasticsearch before 7.9)"
            return

        def put(current: dict[str, Any]) -> None:
            template: dict[str, Any] = {"settings": current, "mappings": mappings}
            if aliases:
                template["aliases"] = aliases
            self.target.request("POST", "/_index_template/_simulate", body={
                "index_patterns": [f"{self._sim_prefix}-*"], "priority": 2_000_000_000,
                "template": template})

        if self._create(item, settings, put):
            item.action = "WouldCreate"
            if len(item.removed) > known:
                notes.append(f"{', '.join(item.removed[known:])} ({item.reason})")
            if notes:
                item.reason = f"the target would reject {'; '.join(notes)}: Create " \
                    "removes them and retries"

    # -- the run -----------------------------------------------------------------------------

    def run(self, mode: str, indices: Iterable[tuple[str, str]], *,
            templates: bool = True, method: str = "copy") -> MetadataResult:
        """Migrate (or evaluate) metadata for the (source, target) index pairs."""
        result = MetadataResult(mode)
        self.target.info()  # first: an unreachable target fails the run before any read
        evaluate = mode == "Evaluate"
        pairs = list(indices)
        metas = idx.index_metadata(self.source, [source for source, _ in pairs])
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
            self._templates(result, LEGACY_TEMPLATES, evaluate, {})
            components = self._templates(result, COMPONENT_TEMPLATES, evaluate, {})
            self._templates(result, COMPOSABLE_TEMPLATES, evaluate, components)
        self._existing = idx.Mappings(self.target, [target for _, target in pairs])
        created: dict[str, Item] = {}
        jobs: list[tuple[Item, Callable[[], None]]] = []
        for source, target in pairs:
            created[source] = self._index(result, source, target, metas[source], mode,
                                          method, jobs)
        # A few creations in flight, in waves: one at the shard limit stops the rest.
        ran = in_waves([job for _, job in jobs], CREATIONS_IN_FLIGHT,
                       lambda: self._shard_limit is not None)
        for item, _ in jobs[ran:]:
            item.action, item.reason = "TargetRejected", self._shard_limit
        if not evaluate:
            idx.wait_for_primaries(self.target, [i.target for i in created.values()
                                                 if i.action == "Created" and i.target])
        if mode != "Skip":
            for source, target in pairs:
                self._aliases(result, source, target, created[source], evaluate,
                              metas[source].get("aliases") or {})
        return result

    def _templates(self, result: MetadataResult, kind: TemplateKind, evaluate: bool,
                   components: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """One kind of template, in name order. ``components``: the component templates
        a composable one may use. Returns the templates of this kind that exist on the
        target after this step (or would, in Evaluate mode), with the settings and
        mappings the source has."""
        found = self._listing(self.source, kind, refusable=kind.absent is not None) or {}
        existing = self._listing(self.target, kind, refusable=True)
        if existing is None and kind.absent is None:
            existing = {}
        available: dict[str, dict[str, Any]] = {n: {} for n in existing or ()}
        for name in sorted(found):
            body = found[name]
            if existing is None:
                selected, why = self._selected(kind.kind, name, body)
                result.add(Item(kind.kind, name, "Skipped" if not selected else "Incompatible",
                                why or kind.absent))
                continue
            item = self._template_item(result, kind.kind, name, body, existing)
            if item is None:
                continue
            missing = [c for c in body.get("composed_of") or []
                       if c not in components] if kind.composed else []
            if missing:
                item.action = "Incompatible"
                item.reason = (f"it is composed of {', '.join(missing)}, which the target "
                               "does not have and this migration does not create (see the "
                               "componentTemplates allowlist)")
                continue
            parts = kind.parts(body)
            mappings, problem = transforms.unify_mappings(
                parts.get("mappings") or {}, self.spec.metadata.multi_type_mappings)
            if problem:
                item.action, item.reason = "Incompatible", f"the template {problem}"
                continue
            mappings, modern = modernize(mappings, self.source.info(), self.target.info())
            settings = idx.creatable_settings(parts.get("settings") or {}, None)
            if evaluate and kind.composed:
                # The components may not exist on the target yet: validate the composition.
                composed_settings, composed_mappings = transforms.compose(
                    components, body.get("composed_of") or [], settings, mappings)
                self._simulate(item, composed_settings, composed_mappings,
                               parts.get("aliases"), False)
                # Report only the template's own settings as removed.
                item.removed = [r for r in item.removed if r in settings]
            elif evaluate:
                self._simulate(item, settings, mappings, parts.get("aliases"), False)
            else:
                def put(current: dict[str, Any], name: str = name,
                        body: Mapping[str, Any] = body, parts: Mapping[str, Any] = parts,
                        mappings: dict[str, Any] = mappings) -> None:
                    self.target.request("PUT", f"{kind.path}/{quote(name)}",
                                        params={"create": "true"},
                                        body=kind.put_body(body, parts, current, mappings))

                if self._create(item, settings, put):
                    item.action = "Created"
            if item.action in ("Created", "WouldCreate"):
                available[name] = {"settings": settings, "mappings": mappings}
                _note(item, transforms.type_changes(parts.get("mappings") or {}) + modern)
        return available

    def _template_item(self, result: MetadataResult, kind: str, name: str,
                       body: Mapping[str, Any], existing: Collection[str]) -> Item | None:
        """The item for one template, or None when it is settled by selection or
        existence alone."""
        selected, why = self._selected(kind, name, body)
        if not selected:
            result.add(Item(kind, name, "Skipped", why))
            return None
        if name in existing:
            result.add(Item(kind, name, "AlreadyExists", "exists on the target; left as it is"))
            return None
        return result.add(Item(kind, name, "Created"))

    def _problem(self, meta: Mapping[str, Any], method: str) -> str | None:
        """Why an index cannot be migrated as it is, or None."""
        mappings, problem = transforms.unify_mappings(
            meta.get("mappings") or {}, self.spec.metadata.multi_type_mappings)
        if problem:
            return f"the index {problem}"
        return copy_problem(mappings, method, self.target.info())

    def _index(self, result: MetadataResult, source: str, target: str,
               got: Mapping[str, Any], mode: str, method: str,
               jobs: list[tuple[Item, Callable[[], None]]]) -> Item:
        """The item of one index; one to create adds its creation to ``jobs``."""
        item = result.add(Item(INDEX, source, "Created", target=target))
        problem = self._problem(got, method)
        if problem:
            item.action, item.reason = "Incompatible", problem
            return item
        mappings, _ = transforms.unify_mappings(got.get("mappings") or {},
                                                self.spec.metadata.multi_type_mappings)
        mappings, modern = modernize(mappings, self.source.info(), self.target.info())
        source_field = mappings.get("_source") or {}
        if method == "copy" and (source_field.get("excludes") or source_field.get("includes")):
            item.reason = ("fields left out of _source are not copied (_source "
                           "includes/excludes)")
        assert self._existing is not None
        existing = self._existing.get(target)
        if existing is not None:
            mark = (next(iter(existing.values()), {}).get("mappings", {}).get("_meta") or {}
                    ).get(META_KEY)
            if mark == self.uid:
                item.reason = EARLIER
                return item
            item.action = "AlreadyExists"
            item.reason = "exists on the target; left as it is"
            if mode == "Evaluate" and self.spec.on_conflict is None:
                count = (self.target.request("GET", f"/{quote(target)}/_count") or {}
                         ).get("count", 0)
                if count:
                    item.reason += (f"; it holds {count} documents, so the copy would stop "
                                    "(TargetIndexNotEmpty) unless onConflict is set")
            return item
        settings = idx.creatable_settings(got.get("settings") or {},
                                          self.spec.metadata.target_replicas)
        mappings["_meta"] = {**(mappings.get("_meta") or {}), META_KEY: self.uid}
        aliases = self._selected_aliases(got.get("aliases") or {}) if mode != "Skip" else {}
        changes = transforms.type_changes(got.get("mappings") or {}) + modern
        if mode == "Evaluate":
            self._simulate(item, settings, mappings, aliases, True)
            _note(item, changes)
            return item
        jobs.append((item, lambda: self._create_index(item, target, settings, mappings,
                                                      aliases, changes)))
        return item

    def _create_index(self, item: Item, target: str, settings: dict[str, Any],
                      mappings: dict[str, Any], aliases: dict[str, Any],
                      changes: list[str]) -> None:
        def put(current: dict[str, Any]) -> None:
            # Not waiting for the shards here: run() waits for all of them at once.
            self.target.request("PUT", f"/{quote(target)}", body={
                "settings": current, "mappings": mappings, "aliases": aliases},
                params={"wait_for_active_shards": "0"})

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
            _note(item, changes)
            log.info("created index %s on %s (%d settings removed)", target, self.target.url,
                     len(item.removed))
        elif item.action == "AlreadyExists":
            item.action = "TargetRejected"
            item.reason = f"{target} was created on the target by someone else meanwhile"
        elif transforms.at_shard_limit(item.reason or ""):
            # Every further index would be refused the same way: stop creating.
            item.reason = ("the target is at its shard limit (cluster.max_shards_per_node "
                           f"per data node): {item.reason}")
            self._shard_limit = (f"not created: the target refused {target} at its shard "
                                 "limit (cluster.max_shards_per_node), so no further "
                                 "index was tried")

    def _selected_aliases(self, aliases: Mapping[str, Any]) -> dict[str, Any]:
        return {name: body for name, body in aliases.items()
                if self._selected(ALIAS, name)[0]}

    def _aliases(self, result: MetadataResult, source: str, target: str, index: Item,
                 evaluate: bool, aliases: Mapping[str, Any]) -> None:
        for name, body in sorted(aliases.items()):
            selected, why = self._selected(ALIAS, name)
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
            present = self.target.request("GET", f"/{quote(target)}/_alias/{quote(name)}")
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
                self.target.request("POST", "/_aliases", body={"actions": [
                    {"add": {**body, "index": target, "alias": name}}]})
            except Refused as refusal:
                item.action, item.reason = "TargetRejected", refusal.reason
