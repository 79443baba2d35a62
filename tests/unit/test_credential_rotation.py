"""A rotated Secret is picked up by a running Engine at the first 401 (defect 7), on a
real HTTP connection to a loopback server that checks basic auth."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from ferry.api.cluster import ClusterSpec
from ferry.clients.kube import ObjectReader
from ferry.clients.search import connection_for
from ferry.errors import AuthenticationFailed
from testbed.proxy import Refusal, Request, ReverseProxy

PAGE = b'{"hits":{"hits":[{"_id":"a"}]}}'


class Secrets(ObjectReader):
    """The Secret as the API server holds it now; records each cache invalidation."""

    def __init__(self, password: str) -> None:
        super().__init__()
        self.password = password
        self.invalidated: list[tuple[str, str]] = []

    def invalidate(self, namespace: str, name: str) -> None:
        self.invalidated.append((namespace, name))

    def _data(self, kind: str, namespace: str, name: str) -> dict[str, str]:
        return {"username": "ferry", "password": self.password}


@pytest.fixture
def guarded() -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """A loopback server (the test bed's proxy answering by itself) accepting one
    password (mutable); the passwords it saw."""
    accepted = {"password": "old"}
    seen: list[str] = []

    def answer(request: Request) -> Refusal:
        auth = request.header("Authorization") or ""
        password = base64.b64decode(auth[6:]).decode().partition(":")[2]
        seen.append(password)
        if password == accepted["password"]:
            return Refusal(200, PAGE)
        return Refusal(401, b'{"error":"unauthorized","status":401}')

    # Every request is answered by the gate: nothing is forwarded upstream.
    server = ReverseProxy("http://127.0.0.1:9", gate=answer).start()
    try:
        yield server.url, accepted, seen
    finally:
        server.stop()


def spec(url: str) -> ClusterSpec:
    return ClusterSpec.model_validate({"endpoint": url, "connection": {"maxRetries": 0},
                                       "auth": {"basic": {"secretName": "creds"}}})


def test_a_rotated_secret_is_used_from_the_first_refusal_on(
        guarded: tuple[str, dict[str, str], list[str]]) -> None:
    url, accepted, seen = guarded
    secrets = Secrets("old")
    with connection_for(spec(url), "ns", secrets).engine() as engine:
        assert engine.request("POST", "/page")["hits"]["hits"][0]["_id"] == "a"
        accepted["password"] = secrets.password = "new"
        # Refused with the old password, sent again with the new one: no error.
        assert engine.request_raw("POST", "/page") == PAGE
        assert engine.request("POST", "/page")["hits"]["hits"][0]["_id"] == "a"
    assert seen == ["old", "old", "new", "new"]
    # Read past the reader's cache (a worker process has no Secret watch).
    assert secrets.invalidated == [("ns", "creds")]


def test_unchanged_credentials_still_fail_and_are_sent_once(
        guarded: tuple[str, dict[str, str], list[str]]) -> None:
    url, accepted, seen = guarded
    accepted["password"] = "rotated-on-the-cluster-only"
    secrets = Secrets("old")
    with connection_for(spec(url), "ns", secrets).engine() as engine, \
            pytest.raises(AuthenticationFailed, match="401"):
        engine.request("POST", "/page")
    assert seen == ["old"]
    assert secrets.invalidated == [("ns", "creds")]
