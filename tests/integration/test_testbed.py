"""The real parts answer: both search nodes and the S3 endpoint."""

from __future__ import annotations

import uuid

import boto3
import pytest

from testbed.s3 import S3Server
from testbed.search import SearchNode

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("fixture", "distribution", "major"),
                         [("opensearch", "opensearch", "2."), ("elasticsearch", None, "7.10.")])
def test_node_answers_and_round_trips_a_document(request: pytest.FixtureRequest, fixture: str,
                                                 distribution: str | None, major: str) -> None:
    node: SearchNode = request.getfixturevalue(fixture)
    info = node.request("GET", "/")
    assert info["version"]["number"].startswith(major)  # type: ignore[index]
    assert info["version"].get("distribution") == distribution  # type: ignore[index]
    index = f"probe-{uuid.uuid4().hex[:8]}"
    node.request("PUT", f"/{index}", {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0, "analysis": {"analyzer": {
            "folded": {"type": "custom", "tokenizer": "standard",
                       "filter": ["lowercase", "asciifolding"]}}}},
        "mappings": {"properties": {"title": {"type": "text", "analyzer": "folded"}}}})
    node.request("PUT", f"/{index}/_doc/1?refresh=true", {"title": "Crème Brûlée"})
    hits = node.request("POST", f"/{index}/_search", {"query": {"match": {"title": "creme"}}})
    assert hits["hits"]["hits"][0]["_id"] == "1"  # type: ignore[index]
    node.request("DELETE", f"/{index}")


def test_nodes_have_the_modules_migrations_need(opensearch: SearchNode,
                                                elasticsearch: SearchNode) -> None:
    for node in (opensearch, elasticsearch):
        plugins = node.request("GET", "/_nodes/plugins")
        modules = {m["name"] for n in plugins["nodes"].values()  # type: ignore[index]
                   for m in n["modules"]}
        assert {"analysis-common", "reindex", "mapper-extras"} <= modules, node.engine


def test_s3_bucket_and_object_round_trip(s3: S3Server) -> None:
    client = boto3.client("s3", endpoint_url=s3.url, aws_access_key_id=s3.access_key,
                          aws_secret_access_key=s3.secret_key, region_name=s3.region)
    bucket = f"probe-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="a/b.json", Body=b'{"ok": true}')
    assert client.get_object(Bucket=bucket, Key="a/b.json")["Body"].read() == b'{"ok": true}'
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["a/b.json"]
