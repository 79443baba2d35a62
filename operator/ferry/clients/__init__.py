"""Clients: one place each to reach Kubernetes, a search cluster, and S3."""
