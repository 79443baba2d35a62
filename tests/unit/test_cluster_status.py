"""The rules that turn a health check into status, conditions and events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ferry.api.cluster import ClusterSpec
from ferry.clients.engine import engine_of
from ferry.conditions import status_patch
from ferry.errors import AuthenticationFailed, ClusterUnreachable, SecretNotFound
from ferry.handlers.cluster import referenced_objects
from ferry.services.cluster.service import ClusterObservation, index_totals
from ferry.services.cluster.status import (
    build_status,
    phase_of_error,
    transition_events,
    write_due,
)

SPEC = ClusterSpec(endpoint="http://127.0.0.1:9200")


def obs(health: str = "green", version: str = "2.19.6") -> ClusterObservation:
    return ClusterObservation("opensearch", "opensearch", version, "c", health, 1, 1, 5,
                       0 if health == "green" else 3, {"count": 1, "documents": 2,
                                                       "storeBytes": 3},
                       {"count": 1, "documents": 0, "storeBytes": 1})


def test_health_maps_to_phase_and_reason() -> None:
    green = build_status({}, SPEC, 1, obs("green"))
    assert (green["phase"], green["conditions"][0]["reason"]) == ("Ready", "Healthy")
    yellow = build_status({}, SPEC, 1, obs("yellow"))
    assert (yellow["phase"], yellow["conditions"][0]["reason"]) == ("Ready", "HealthYellow")
    red = build_status({}, SPEC, 1, obs("red"))
    assert (red["phase"], red["conditions"][0]["status"]) == ("Degraded", "False")


def test_errors_map_to_phases() -> None:
    assert phase_of_error(ClusterUnreachable("x", code="TLSError")) == "Unreachable"
    assert phase_of_error(AuthenticationFailed("x")) == "AuthenticationFailed"
    assert phase_of_error(SecretNotFound("x")) == "Invalid"


def test_steady_state_needs_no_write_and_no_event() -> None:
    first = build_status({}, SPEC, 1, obs())
    second = build_status(first, SPEC, 1, obs())
    assert not write_due(first, second)
    assert transition_events(first, second) == []
    assert second["conditions"] == first["conditions"]


def test_moving_figures_are_written_at_most_once_a_minute() -> None:
    first = build_status({}, SPEC, 1, obs())
    busier = obs()
    busier.indices = {"count": 1, "documents": 99, "storeBytes": 12345}
    assert not write_due(first, build_status(first, SPEC, 1, busier))
    assert write_due(first, build_status(first, SPEC, 1, obs("yellow")))
    first["lastCheckedTime"] = (datetime.now(UTC) - timedelta(seconds=61)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    assert write_due(first, build_status(first, SPEC, 1, busier))
    assert not write_due(first, build_status(first, SPEC, 1, obs()))


def test_heartbeat_write_after_five_minutes() -> None:
    first = build_status({}, SPEC, 1, obs())
    old = (datetime.now(UTC) - timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    first["lastCheckedTime"] = old
    assert write_due(first, build_status(first, SPEC, 1, obs()))


def test_transition_events() -> None:
    ready = build_status({}, SPEC, 1, obs())
    down = build_status(ready, SPEC, 1, ClusterUnreachable("refused", code="ConnectionRefused"))
    assert [(e.type, e.reason) for e in transition_events(ready, down)] == [
        ("Warning", "ConnectionRefused")]
    assert down["version"] == "2.19.6" and down["health"] is None
    upgraded = build_status(ready, SPEC, 1, obs(version="2.19.7"))
    assert [e.reason for e in transition_events(ready, upgraded)] == ["VersionChanged"]
    assert status_patch(ready, {"phase": "Ready"})["engine"] is None


def test_engine_detection() -> None:
    assert engine_of({"version": {"distribution": "opensearch", "number": "2.19.6"}}) == (
        "opensearch", "opensearch", "2.19.6")
    assert engine_of({"version": {"number": "7.10.2", "build_flavor": "oss"}}) == (
        "elasticsearch", "oss", "7.10.2")


def test_index_totals_count_system_indices_apart() -> None:
    user, system = index_totals([
        {"index": "logs", "docs.count": "10", "store.size": "100"},
        {"index": ".kibana", "docs.count": "2", "store.size": "5"},
        {"index": "empty", "docs.count": None, "store.size": None}])
    assert user == {"count": 2, "documents": 10, "storeBytes": 100}
    assert system == {"count": 1, "documents": 2, "storeBytes": 5}


def test_referenced_objects() -> None:
    spec = {"auth": {"basic": {"secretName": "creds"}},
            "tls": {"caConfigMapRef": {"name": "ca", "key": "k"},
                    "clientCertificate": {"secretName": "client"}}}
    assert referenced_objects(spec) == {("Secret", "creds"), ("ConfigMap", "ca"),
                                        ("Secret", "client")}


def test_referenced_objects_of_a_spec_the_models_refuse() -> None:
    # Stored under an older, looser schema: no secretName, a string where an object goes.
    assert referenced_objects({"auth": {"basic": {}}, "tls": {"caSecretRef": None}}) == set()
    assert referenced_objects({"auth": {"basic": {"secretName": "creds"}},
                               "tls": {"caConfigMapRef": {"name": "ca"}}}) == {
        ("Secret", "creds"), ("ConfigMap", "ca")}
