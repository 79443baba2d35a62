"""ClusterService: what a migration engineer needs to know about one endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.api.cluster import ClusterSpec
from ferry.clients.kube import ObjectReader
from ferry.clients.search import SearchConnection, connection_for
from ferry.services.indices import is_system_index


@dataclass
class ClusterObservation:
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

    def observe(self, spec: ClusterSpec, namespace: str) -> ClusterObservation:
        """GET /, cluster health and index totals. Raises a classified FerryError."""
        with self.connect(spec, namespace).engine() as engine:
            info = engine.info()
            health = engine.get("/_cluster/health")
            # Hidden indices (ES 7.7+, every OpenSearch) show only when asked for; ES 5/6
            # list every index and refuse the parameter (HTTP 400).
            hidden = {"expand_wildcards": "all"} if info.at_least((7, 7)) else {}
            rows = engine.get("/_cat/indices", format="json", bytes="b",
                              h="index,docs.count,store.size", **hidden) or []
        user, system = index_totals(rows)
        return ClusterObservation(
            engine=info.engine, distribution=info.distribution, version=info.version,
            cluster_name=health.get("cluster_name"), health=health["status"],
            nodes=health["number_of_nodes"], data_nodes=health["number_of_data_nodes"],
            active_shards=health["active_shards"],
            unassigned_shards=health["unassigned_shards"],
            indices=user, system_indices=system,
        )
