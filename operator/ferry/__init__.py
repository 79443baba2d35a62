"""Ferry: a Kubernetes operator that migrates Elasticsearch and OpenSearch clusters."""

__version__ = "0.1.0"
