"""Index selection, target naming, creatable settings, requests over many index
names (in groups that fit in a URL) and the wait for created indices' primaries, shared
by Snapshot and Backfill."""

from __future__ import annotations

import fnmatch
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from ferry.api.backfill import TargetNaming
from ferry.clients.engine import Engine, quote
from ferry.errors import EngineError, FerryError

# The mark in a target index's mappings `_meta` naming the Backfill (uid) that created
# it: what Ferry created it may write into again (after a restart) and tune.
META_KEY = "ferry.dev/backfill"

# Settings an engine sets itself; copying them into a new index is refused or wrong.
INTERNAL_SETTINGS = (
    "index.uuid", "index.creation_date", "index.creation_date_string", "index.version.",
    "index.provided_name", "index.routing.allocation.initial_recovery",
    "index.resize.", "index.shrink.", "index.verified_before_close", "index.history.uuid",
    "index.blocks.", "index.frozen", "index.search.throttled", "index.lifecycle.",
    "index.plugins.index_state_management", "index.opendistro.", "index.replication.",
    "index.soft_deletes.retention_lease", "index.store.snapshot.", "index.downsample.",
    "index.routing_path", "index.hidden",
    # Elasticsearch's data tiers (default distribution, 7.10+): no OpenSearch node has a
    # _tier attribute, so these would leave every shard unassigned.
    "index.routing.allocation.include._tier", "index.routing.allocation.require._tier",
    "index.routing.allocation.exclude._tier",
)


# An Elasticsearch/OpenSearch request line is limited to 4 KB by default
# (http.max_initial_line_length); index lists in a path stay well below it.
MAX_PATH_NAMES_BYTES = 2048
# How long one wait for the primaries of created indices may take (an index creation's
# own default wait for its active shards), in seconds; the client waits a little longer
# for the answer than the node waits for the shards.
PRIMARIES_TIMEOUT = 30


def name_groups(names: Iterable[str], limit: int = MAX_PATH_NAMES_BYTES) -> list[list[str]]:
    """Index names split into groups whose comma-joined, URL-quoted form fits in
    ``limit`` bytes (a name longer than that still gets a group of its own), so no
    request carries every index name of a large migration in one URL."""
    groups: list[list[str]] = []
    size = 0
    for name in names:
        cost = len(urllib.parse.quote(name, safe="")) + 1
        if not groups or size + cost > limit:
            groups.append([])
            size = 0
        groups[-1].append(name)
        size += cost
    return groups


def path_expression(names: Iterable[str]) -> str:
    """Names of one group as one path segment."""
    return ",".join(urllib.parse.quote(n, safe="") for n in names)


def index_metadata(engine: Engine, names: list[str]) -> dict[str, Any]:
    """``GET <name>`` (settings, mappings, aliases) of each index, in one request per
    group of names; an index missing from a group's answer (the group was refused, or
    the source answers one index at a time) is asked on its own, and is {} if absent."""
    found: dict[str, Any] = {}
    for group in name_groups(names):
        got = engine.request("GET", f"/{path_expression(group)}") or {}
        found.update({name: got[name] for name in group if name in got})
    for name in names:
        if name not in found:
            found[name] = (engine.request("GET", f"/{quote(name)}") or {}).get(name) or {}
    return found


def wait_for_primaries(engine: Engine, names: Iterable[str],
                       timeout: int = PRIMARIES_TIMEOUT) -> None:
    """Wait until every named index has its primary shards started (health yellow: what
    an index creation waits for by default), one request per group of names. Indices
    created with ``wait_for_active_shards=0`` are waited for here, together: their
    shards start while later indices are created. Raises a retryable FerryError when
    they are not started within ``timeout`` (per group)."""
    for group in name_groups(names):
        try:
            engine.request("GET", f"/_cluster/health/{path_expression(group)}",
                           params={"wait_for_status": "yellow", "timeout": f"{timeout}s",
                                   "request_timeout": timeout + 15,
                                   "filter_path": "status,timed_out"})
        except EngineError as exc:  # 408: timed out, or the node is busy (5xx)
            shown = ", ".join(group[:3]) + (f" and {len(group) - 3} more"
                                            if len(group) > 3 else "")
            raise FerryError(f"the target has not started the primary shards of {shown} "
                             f"within {timeout}s ({exc.message}); waiting for them",
                             code="TargetIndicesNotStarted") from None


def alias_names(engine: Engine) -> set[str]:
    """Every alias on a cluster, in one request: a name among them is not an index."""
    rows = engine.get("/_cat/aliases", format="json", h="alias") or []
    return {row["alias"] for row in rows}


class Mappings:
    """The mappings of many indices of one cluster, read in groups of names: ``get``
    answers as ``GET <name>/_mapping`` would, without a request per index."""

    def __init__(self, engine: Engine, names: Iterable[str]) -> None:
        self.engine = engine
        self.found: dict[str, Any] = {}
        for group in name_groups(names):
            self.found.update(engine.get(f"/{path_expression(group)}/_mapping",
                                         ignore_unavailable="true") or {})
        # An alias answers under the name of the index behind it: asked on its own.
        self.aliases = alias_names(engine)

    def get(self, name: str) -> dict[str, Any] | None:
        if name in self.found:
            return {name: self.found[name]}
        if name in self.aliases:
            return self.engine.get(f"/{quote(name)}/_mapping")
        return None


def is_system_index(name: str) -> bool:
    """The one rule for "system index": dot-prefixed (engine and plugin indices, and
    Ferry's own coordination indices). Selections, totals and allowlists all use it."""
    return name.startswith(".")


def select(names: Iterable[str], patterns: list[str]) -> list[str]:
    """Patterns with ``-`` exclusions, applied in order; empty: every non-dot index.

    A dot-prefixed index is only selected by a pattern that itself starts with a dot,
    so ``*`` never drags system indices into a migration.
    """
    names = sorted(names)
    if not patterns:
        return [n for n in names if not is_system_index(n)]
    chosen: list[str] = []
    for pattern in patterns:
        exclude = pattern.startswith("-")
        pat = pattern[1:] if exclude else pattern
        matched = [n for n in names if fnmatch.fnmatchcase(n, pat)
                   and (pat.startswith(".") or not is_system_index(n))]
        if exclude:
            chosen = [n for n in chosen if n not in matched]
        else:
            chosen += [n for n in matched if n not in chosen]
    return sorted(chosen)


def target_name(source: str, naming: TargetNaming) -> str:
    if source in naming.map:
        return naming.map[source]
    return f"{naming.prefix}{source}{naming.suffix}"


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{full}."))
        else:
            flat[full] = value
    return flat


def creatable_settings(index_settings: Mapping[str, Any], replicas: int | None
                       ) -> dict[str, Any]:
    """The source index's settings minus what the engine owns, flattened."""
    flat = _flatten(index_settings)
    out = {k: v for k, v in flat.items()
           if not any(k == p or k.startswith(p) for p in INTERNAL_SETTINGS)}
    if replicas is not None:
        out["index.number_of_replicas"] = replicas
        out.pop("index.auto_expand_replicas", None)
    return out
