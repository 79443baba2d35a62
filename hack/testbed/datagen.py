"""Reproducible, realistic test data: web logs, e-commerce orders, users.

Seeded, so every run (tests, demo, benchmarks) loads the same documents. The
mappings cover what a migration must carry: text with a custom analyzer, keyword,
numbers, dates, object, nested, geo_point; orders are routed by customer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from testbed.search import SearchNode

ANALYSIS = {"analyzer": {"folded_text": {
    "type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]}}}

PATHS = ["/", "/cart", "/checkout", "/search", "/product/{}", "/api/v1/items/{}", "/login"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "Googlebot/2.1",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"]
WORDS = ["café", "crème", "brûlée", "naïve", "résumé", "fjord", "smörgåsbord", "piñata",
         "jalapeño", "über", "search", "cluster", "shard", "replica", "snapshot", "migrate",
         "ferry", "harbour", "tide"]
CITIES = [("Lisbon", 38.72, -9.14), ("Oslo", 59.91, 10.75), ("Zürich", 47.37, 8.54),
          ("Montréal", 45.50, -73.57), ("São Paulo", -23.55, -46.63)]


@dataclass(frozen=True)
class IndexSpec:
    name: str
    shards: int
    body: dict[str, Any]


def logs_index(name: str = "web-logs", shards: int = 3) -> IndexSpec:
    return IndexSpec(name, shards, {
        "settings": {"number_of_shards": shards, "number_of_replicas": 0,
                     "analysis": ANALYSIS},
        "mappings": {"properties": {
            "@timestamp": {"type": "date"},
            "message": {"type": "text", "analyzer": "folded_text"},
            "path": {"type": "keyword"},
            "status": {"type": "short"},
            "bytes": {"type": "long"},
            "latency_ms": {"type": "float"},
            "client": {"properties": {"ip": {"type": "ip"}, "agent": {"type": "keyword"},
                                      "geo": {"type": "geo_point"},
                                      "city": {"type": "keyword"}}},
        }}})


def orders_index(name: str = "orders", shards: int = 2) -> IndexSpec:
    return IndexSpec(name, shards, {
        "settings": {"number_of_shards": shards, "number_of_replicas": 0,
                     "analysis": ANALYSIS},
        "mappings": {"_routing": {"required": True}, "properties": {
            "order_id": {"type": "keyword"},
            "customer": {"type": "keyword"},
            "placed_at": {"type": "date"},
            "total": {"type": "scaled_float", "scaling_factor": 100},
            "note": {"type": "text", "analyzer": "folded_text"},
            "lines": {"type": "nested", "properties": {
                "sku": {"type": "keyword"}, "qty": {"type": "integer"},
                "price": {"type": "double"}}},
            "shipping": {"properties": {"city": {"type": "keyword"},
                                        "location": {"type": "geo_point"}}},
        }}})


def users_index(name: str = "users", shards: int = 1) -> IndexSpec:
    return IndexSpec(name, shards, {
        "settings": {"number_of_shards": shards, "number_of_replicas": 0},
        "mappings": {"properties": {
            "name": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
            "email": {"type": "keyword"}, "signed_up": {"type": "date"},
            "active": {"type": "boolean"}, "tags": {"type": "keyword"},
            "profile": {"type": "object", "properties": {"bio": {"type": "text"},
                                                         "age": {"type": "integer"}}},
        }}})


START = datetime(2026, 1, 1, tzinfo=UTC)


def log_docs(n: int, seed: int = 1) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    rnd = random.Random(seed)
    for i in range(n):
        city, lat, lon = rnd.choice(CITIES)
        yield f"log-{i:08d}", None, {
            "@timestamp": (START + timedelta(seconds=i * 7)).isoformat(),
            "message": " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 14))),
            "path": rnd.choice(PATHS).format(rnd.randint(1, 5000)),
            "status": rnd.choice([200] * 17 + [301, 404, 500]),
            "bytes": rnd.randint(200, 90000),
            "latency_ms": round(rnd.expovariate(1 / 40), 3),
            "client": {"ip": f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}."
                       f"{rnd.randint(1, 254)}", "agent": rnd.choice(AGENTS),
                       "geo": {"lat": lat + rnd.uniform(-0.1, 0.1),
                               "lon": lon + rnd.uniform(-0.1, 0.1)}, "city": city},
        }


def order_docs(n: int, seed: int = 2) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    rnd = random.Random(seed)
    for i in range(n):
        customer = f"cust-{rnd.randint(1, 2000):05d}"
        lines = [{"sku": f"SKU-{rnd.randint(1, 900):04d}", "qty": rnd.randint(1, 5),
                  "price": round(rnd.uniform(1, 250), 2)} for _ in range(rnd.randint(1, 4))]
        city, lat, lon = rnd.choice(CITIES)
        yield f"order-{i:08d}", customer, {
            "order_id": f"order-{i:08d}", "customer": customer,
            "placed_at": (START + timedelta(minutes=i)).isoformat(),
            "total": round(sum(line["qty"] * line["price"] for line in lines), 2),
            "note": " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 6))),
            "lines": lines,
            "shipping": {"city": city, "location": [lon, lat]},
        }


def user_docs(n: int, seed: int = 3) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    rnd = random.Random(seed)
    for i in range(n):
        yield f"user-{i:07d}", None, {
            "name": f"{rnd.choice(WORDS).title()} {rnd.choice(WORDS).title()}",
            "email": f"user{i}@example.test", "signed_up": (START - timedelta(days=i % 900))
            .date().isoformat(), "active": rnd.random() > 0.2,
            "tags": rnd.sample(WORDS, 3),
            "profile": {"bio": " ".join(rnd.sample(WORDS, 6)), "age": rnd.randint(18, 90)},
        }


def bulk_lines(index: str, docs: Iterator[tuple[str, str | None, dict[str, Any]]]
               ) -> Iterator[str]:
    for doc_id, routing, source in docs:
        action: dict[str, Any] = {"_index": index, "_id": doc_id}
        if routing:
            action["routing"] = routing
        yield json.dumps({"index": action}) + "\n" + json.dumps(source) + "\n"


def load(node: SearchNode, spec: IndexSpec,
         docs: Iterator[tuple[str, str | None, dict[str, Any]]], batch: int = 5000) -> int:
    """Create the index and bulk-load the documents; returns the count loaded."""
    node.request("PUT", f"/{spec.name}", spec.body)
    count = 0
    buffer: list[str] = []
    for line in bulk_lines(spec.name, docs):
        buffer.append(line)
        if len(buffer) >= batch:
            count += _flush(node, buffer)
    count += _flush(node, buffer)
    node.request("POST", f"/{spec.name}/_refresh")
    return count


def _flush(node: SearchNode, buffer: list[str]) -> int:
    if not buffer:
        return 0
    result = node.request("POST", "/_bulk", "".join(buffer).encode())
    if result["errors"]:  # type: ignore[index]
        first = next(i for i in result["items"] if next(iter(i.values())).get("error"))  # type: ignore[index]
        raise RuntimeError(f"test data did not load: {first}")
    n = len(buffer)
    buffer.clear()
    return n


def standard_dataset(node: SearchNode, scale: int = 50_000, prefix: str = "") -> dict[str, int]:
    """Three indices, ``scale`` documents in all: 60% logs, 30% orders, 10% users."""
    counts = {}
    for spec, gen, share in ((logs_index(f"{prefix}web-logs"), log_docs, 0.6),
                             (orders_index(f"{prefix}orders"), order_docs, 0.3),
                             (users_index(f"{prefix}users"), user_docs, 0.1)):
        counts[spec.name] = load(node, spec, gen(int(scale * share)))
    return counts
