"""ClusterService: what a migration engineer needs to know about one endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch

from ferry.api.cluster import ClusterSpec
from ferry.clients.kube import ObjectReader
from ferry.clients.search import SearchConnection, classify, connection_for


@dataclass
class Observation:
    """One health check's findings, in the shape of ClusterStatus fields."""

    engine: str
    distribution: str | None
    version: str
    cluster_name: str | None
    health: str
    nodes: int
    data_nodes: int
    active_shards: int
    unassigned_shards: int
    indices: dict[str, int]
    system_indices: dict[str, int]

    def status_fields(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "distribution": self.distribution, "version": self.version,
            "clusterName": self.cluster_name, "health": self.health, "nodes": self.nodes,
            "dataNodes": self.data_nodes, "activeShards": self.active_shards,
            "unassignedShards": self.unassigned_shards, "indices": self.indices,
            "systemIndices": self.system_indices,
        }


def engine_of(info: dict[str, Any]) -> tuple[str, str | None, str]:
    """(engine, distribution, version) from the answer to ``GET /``."""
    version = info.get("version", {})
    distribution = version.get("distribution")
    if distribution == "opensearch":
        return "opensearch", "opensearch", version.get("number", "")
    return "elasticsearch", version.get("build_flavor"), version.get("number", "")


def is_system_index(name: str) -> bool:
    return name.startswith(".")


def index_totals(rows: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    user = {"count": 0, "documents": 0, "storeBytes": 0}
    system = {"count": 0, "documents": 0, "storeBytes": 0}
    for row in rows:
        bucket = system if is_system_index(row["index"]) else user
        bucket["count"] += 1
        bucket["documents"] += int(row.get("docs.count") or 0)
        bucket["storeBytes"] += int(row.get("store.size") or 0)
    return user, system


class ClusterService:
    def __init__(self, reader: ObjectReader) -> None:
        self.reader = reader

    def connect(self, spec: ClusterSpec, namespace: str) -> SearchConnection:
        return connection_for(spec, namespace, self.reader)

    def client(self, spec: ClusterSpec, namespace: str, **overrides: Any) -> OpenSearch:
        return self.connect(spec, namespace).client(**overrides)

    def observe(self, spec: ClusterSpec, namespace: str) -> Observation:
        """GET /, cluster health and index totals. Raises a classified FerryError."""
        conn = self.connect(spec, namespace)
        client = conn.client()
        try:
            engine, distribution, version = engine_of(client.info())
            health = client.cluster.health()
            rows = client.cat.indices(format="json", bytes="b", h="index,docs.count,store.size",
                                      expand_wildcards="all")
        except Exception as exc:
            raise classify(exc, conn.url) from None
        finally:
            client.close()
        user, system = index_totals(rows)
        return Observation(
            engine=engine, distribution=distribution, version=version,
            cluster_name=health.get("cluster_name"), health=health["status"],
            nodes=health["number_of_nodes"], data_nodes=health["number_of_data_nodes"],
            active_shards=health["active_shards"],
            unassigned_shards=health["unassigned_shards"],
            indices=user, system_indices=system,
        )
