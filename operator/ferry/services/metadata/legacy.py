"""Mappings written for Elasticsearch 5 and earlier, made acceptable to today's engines:
the pure transforms, each one reported in words (``status.metadata``, the item's reason).

- ``string`` → ``keyword`` (``index: not_analyzed`` or ``no``) or ``text`` (analyzed, the
  default), with the parameters the new type does not take dropped (``omit_norms`` →
  ``norms: false``; a 2.x ``fielddata`` object dropped);
- ``index: analyzed | not_analyzed | no`` on any field → ``true`` / ``false``;
- ``_all``, ``_timestamp``, ``_ttl`` and every ``include_in_all`` removed (no equivalent:
  ``copy_to`` replaces ``_all``, an ingest pipeline ``_timestamp``, ILM/ISM ``_ttl``);
- Joda date formats: camelCase built-in names (``dateOptionalTime``) → the java-time
  names (``date_optional_time``); on sources that parse with Joda (before 7.0) custom
  patterns get the letters whose meaning changed: ``Y`` (Joda year of era) → ``y``,
  ``x`` (Joda week year) → ``Y``.

A fresh Elasticsearch 5.6 index already reads ``string`` back as ``text``/``keyword``
and refuses ``_timestamp``/``_ttl``: those appear in indices created by 2.x and carried
over, and in legacy templates (stored as written).

Free of I/O; unit-tested in tests/unit/test_metadata_rules.py.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from ferry.clients.engine import EngineInfo

REMOVED_META = ("_all", "_timestamp", "_ttl")
# Names shown per transform in a report line; the rest are counted.
NAMES_SHOWN = 5

# java-time built-in formats (OpenSearch, Elasticsearch 7+) whose Joda names were
# camelCase: the Joda name is the java one with its underscores dropped and camelCased.
JAVA_NAMES = frozenset("""
basic_date basic_date_time basic_date_time_no_millis basic_ordinal_date
basic_ordinal_date_time basic_ordinal_date_time_no_millis basic_time basic_time_no_millis
basic_t_time basic_t_time_no_millis basic_week_date basic_week_date_time
basic_week_date_time_no_millis date_hour date_hour_minute date_hour_minute_second
date_hour_minute_second_fraction date_hour_minute_second_millis date_optional_time
date_time date_time_no_millis hour_minute hour_minute_second hour_minute_second_fraction
hour_minute_second_millis ordinal_date ordinal_date_time ordinal_date_time_no_millis
time_no_millis t_time t_time_no_millis week_date week_date_time week_date_time_no_millis
weekyear_week weekyear_week_day year_month year_month_day epoch_millis epoch_second
""".split())  # noqa: SIM905 (a list of 40 names reads better as words)
JAVA_NAMES = JAVA_NAMES | {f"strict_{n}" for n in JAVA_NAMES if not n.startswith("epoch")}
# Pattern letters Joda and java-time read differently (outside quoted literals).
JODA_LETTERS = {"Y": "y", "x": "Y"}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_QUOTED_OR_LETTER = re.compile(r"'[^']*'|[A-Za-z]")
STRING_ONLY = {"keyword": ("analyzer", "search_analyzer", "search_quote_analyzer",
                           "position_increment_gap", "term_vector", "fielddata",
                           "fielddata_frequency_filter"),
               "text": ("ignore_above", "doc_values", "null_value")}


def uses_joda(source: EngineInfo) -> bool:
    """Whether the source parses custom date patterns with Joda (Elasticsearch < 7)."""
    return source.engine == "elasticsearch" and not source.at_least((7, 0))


def date_format(fmt: str, joda: bool) -> str:
    """A ``format`` (``||``-separated) as java-time reads it."""
    out = []
    for part in fmt.split("||"):
        snake = _CAMEL.sub("_", part).lower()
        if snake in JAVA_NAMES:
            out.append(snake)
        elif joda and part not in JAVA_NAMES:
            out.append(_QUOTED_OR_LETTER.sub(
                lambda m: JODA_LETTERS.get(m.group(0), m.group(0)), part))
        else:
            out.append(part)
    return "||".join(out)


class _Changes:
    def __init__(self) -> None:
        self.by_kind: dict[str, list[str]] = {}

    def add(self, kind: str, name: str) -> None:
        self.by_kind.setdefault(kind, []).append(name)

    def lines(self) -> list[str]:
        out = []
        for kind, names in self.by_kind.items():
            shown = ", ".join(names[:NAMES_SHOWN])
            more = f" (+{len(names) - NAMES_SHOWN} more)" if len(names) > NAMES_SHOWN else ""
            out.append(f"{kind}: {shown}{more}" if names[0] else kind)
        return out


def _string(field: dict[str, Any], path: str, changes: _Changes) -> None:
    # index: not_analyzed / analyzed is said by the new type; only "no" stays (false).
    index = field.pop("index", None)
    new = "keyword" if index in ("not_analyzed", "no", False) else "text"
    field["type"] = new
    if index in ("no", False):
        field["index"] = False
    changes.add(f"string → {new}", path)
    if field.pop("omit_norms", None) is True:
        field["norms"] = False
    if isinstance(field.get("norms"), Mapping):
        field["norms"] = field["norms"].get("enabled", True) is not False
    if isinstance(field.get("fielddata"), Mapping):
        field.pop("fielddata")
    for key in STRING_ONLY[new]:
        field.pop(key, None)


def _field(field: dict[str, Any], path: str, joda: bool, changes: _Changes) -> None:
    if field.get("type") == "string":
        _string(field, path, changes)
    index = field.get("index")
    if isinstance(index, str) and index in ("analyzed", "not_analyzed", "no"):
        field["index"] = index != "no"
        changes.add(f'index: "{index}" → {str(index != "no").lower()}', path)
    if field.pop("include_in_all", None) is not None:
        changes.add("include_in_all removed", path)
    if field.get("type") == "date" and isinstance(field.get("format"), str):
        before = field["format"]
        field["format"] = date_format(before, joda)
        if field["format"] != before:
            changes.add(f"date format {before} → {field['format']}", path)
    for key in ("properties", "fields"):
        children = field.get(key)
        if isinstance(children, Mapping):
            for name, child in children.items():
                if isinstance(child, dict):
                    _field(child, f"{path}.{name}" if path else name, joda, changes)


def modernize(mapping: Mapping[str, Any], source: EngineInfo
              ) -> tuple[dict[str, Any], list[str]]:
    """A typeless mapping without Elasticsearch 5-era parameters, and what changed (one
    line per kind of change, naming the fields)."""
    out = copy.deepcopy(dict(mapping))
    changes = _Changes()
    joda = uses_joda(source)
    for meta in REMOVED_META:
        if out.pop(meta, None) is not None:
            changes.add(f"{meta} removed", "")
    formats = out.get("dynamic_date_formats")
    if isinstance(formats, list):
        new = [date_format(f, joda) if isinstance(f, str) else f for f in formats]
        if new != formats:
            out["dynamic_date_formats"] = new
            changes.add(f"dynamic_date_formats {formats} → {new}", "")
    _field(out, "", joda, changes)
    for entry in out.get("dynamic_templates") or []:
        for name, template in (entry.items() if isinstance(entry, dict) else ()):
            if isinstance(template, dict) and isinstance(template.get("mapping"), dict):
                _field(template["mapping"], f"dynamic_templates.{name}", joda, changes)
    return out, changes.lines()
