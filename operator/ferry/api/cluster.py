"""Cluster: one Elasticsearch or OpenSearch endpoint, a migration source or target."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from ferry.api.common import (
    DATA_KEY,
    K8S_NAME,
    ApiModel,
    ConfigMapKeySelector,
    SecretKeySelector,
    StatusBase,
    nested,
)
from ferry.api.meta import AGE_COLUMN, KindInfo, PrinterColumn, condition_column


class BasicAuth(ApiModel):
    """HTTP basic authentication with a username and password from one Secret."""

    secret_name: K8S_NAME = Field(description="Secret holding the username and password.")
    username_key: DATA_KEY = Field(default="username", description="Key of the username.")
    password_key: DATA_KEY = Field(default="password", description="Key of the password.")


class ApiKeyAuth(ApiModel):
    """An API key sent as `Authorization: ApiKey <value>`. The Secret holds the encoded
    key (base64 of `id:api_key`), as Elasticsearch returns it in `encoded`."""

    secret_ref: SecretKeySelector = Field(description="Secret key holding the encoded API key.")


class SigV4Auth(ApiModel):
    """AWS Signature Version 4, for Amazon OpenSearch Service and OpenSearch Serverless."""

    region: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$",
        description="AWS region of the domain or collection, e.g. eu-west-1.",
    )
    service: Literal["es", "aoss"] = Field(
        default="es",
        description="Signing service: es for OpenSearch Service domains, aoss for Serverless.",
    )
    credentials_secret_name: K8S_NAME | None = Field(
        default=None,
        description="Secret holding an access key pair (keys accessKeyIdKey, secretAccessKeyKey "
        "and optionally sessionTokenKey). Omit to use the default AWS credential chain "
        "(environment, web identity / IRSA, instance profile).",
    )
    access_key_id_key: DATA_KEY = Field(
        default="AWS_ACCESS_KEY_ID", description="Key of the access key id in the Secret."
    )
    secret_access_key_key: DATA_KEY = Field(
        default="AWS_SECRET_ACCESS_KEY", description="Key of the secret access key in the Secret."
    )
    session_token_key: DATA_KEY | None = Field(
        default=None, description="Key of an optional session token in the Secret."
    )


class ClusterAuth(ApiModel):
    """How to authenticate. Set exactly one method; omit `auth` for none."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.basic), has(self.apiKey), has(self.sigv4)]"
                    ".filter(x, x).size() == 1",
                    "message": "auth: set exactly one of basic, apiKey or sigv4 "
                    "(omit auth entirely for no authentication)",
                }
            ]
        }
    }

    basic: BasicAuth | None = Field(default=None, description="HTTP basic authentication.")
    api_key: ApiKeyAuth | None = Field(default=None, description="API key authentication.")
    sigv4: SigV4Auth | None = Field(default=None, description="AWS SigV4 request signing.")


class ClientCertificate(ApiModel):
    """A client certificate and key for mutual TLS, from one Secret (e.g. kubernetes.io/tls)."""

    secret_name: K8S_NAME = Field(description="Secret holding the certificate and key.")
    cert_key: DATA_KEY = Field(default="tls.crt", description="Key of the PEM certificate.")
    key_key: DATA_KEY = Field(default="tls.key", description="Key of the PEM private key.")


class ClusterTLS(ApiModel):
    """TLS settings for https endpoints. Certificates are verified by default."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.caSecretRef) && has(self.caConfigMapRef))",
                    "message": "tls: set at most one of caSecretRef and caConfigMapRef",
                },
                {
                    # A CA that is never used to verify anything is a mistake to name.
                    "rule": "!(has(self.insecureSkipVerify) && self.insecureSkipVerify && "
                    "(has(self.caSecretRef) || has(self.caConfigMapRef)))",
                    "message": "tls: insecureSkipVerify and a CA (caSecretRef or "
                    "caConfigMapRef) contradict each other: the CA would never be used",
                },
            ]
        }
    }

    ca_secret_ref: SecretKeySelector | None = Field(
        default=None, description="PEM CA bundle to verify the server, from a Secret."
    )
    ca_config_map_ref: ConfigMapKeySelector | None = Field(
        default=None, description="PEM CA bundle to verify the server, from a ConfigMap."
    )
    client_certificate: ClientCertificate | None = Field(
        default=None, description="Client certificate and key for mutual TLS."
    )
    server_name: str | None = Field(
        default=None, max_length=253,
        description="Host name to verify the server certificate against, if not the URL's.",
    )
    insecure_skip_verify: bool = Field(
        default=False,
        description="Do not verify the server certificate. An explicit opt-out: the Cluster "
        "shows a warning condition and event while it is set.",
    )


class ConnectionSettings(ApiModel):
    """Timeouts and retries of every request to the cluster."""

    timeout_seconds: int = Field(
        default=30, ge=1, le=600, description="Timeout of one request, in seconds."
    )
    max_retries: int = Field(
        default=3, ge=0, le=10,
        description="Retries of a request that failed on a connection error or timeout.",
    )


class HealthCheck(ApiModel):
    """How often the operator checks the cluster."""

    interval_seconds: int = Field(
        default=60, ge=10, le=86400,
        description="Seconds between health checks (jittered by up to 10%).",
    )


class ClusterSpec(ApiModel):
    """Where the cluster is and how to talk to it."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.endpoint.startsWith('https://') || !has(self.tls) || "
                    "!(has(self.tls.caSecretRef) || has(self.tls.caConfigMapRef) || "
                    "has(self.tls.clientCertificate))",
                    "message": "tls: a CA or a client certificate needs an https:// endpoint",
                    "fieldPath": ".tls",
                }
            ]
        }
    }

    endpoint: str = Field(
        min_length=8,
        max_length=2048,
        description="URL of the cluster's REST endpoint, e.g. https://search.example:9200.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "isURL(self) && url(self).getScheme() in ['http', 'https'] "
                    "&& url(self).getHostname() != ''",
                    "message": "endpoint must be an http:// or https:// URL with a host",
                },
                {
                    "rule": "!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*@')",
                    "message": "endpoint must not embed credentials: reference a Secret "
                    "under auth instead",
                },
                {
                    # Request paths are appended to the endpoint.
                    "rule": "!self.contains('?') && !self.contains('#')",
                    "message": "endpoint must not carry a query or a fragment",
                },
            ]
        },
    )
    auth: ClusterAuth | None = Field(
        default=None, description="Authentication. Omit for a cluster without security."
    )
    tls: ClusterTLS = nested(ClusterTLS, "TLS settings, used when the endpoint is https.")
    connection: ConnectionSettings = nested(ConnectionSettings, "Timeouts and retries.")
    health_check: HealthCheck = nested(HealthCheck, "Health check schedule.")
    read_only: bool = Field(
        default=False,
        description="Ferry never writes to a read-only cluster: it cannot be a Backfill target.",
    )


ClusterPhase = Literal["Pending", "Ready", "Degraded", "Unreachable", "AuthenticationFailed",
                       "Invalid"]


class IndexTotals(ApiModel):
    """Counts of indices, documents and bytes (primaries and replicas)."""

    count: int = Field(default=0, ge=0, description="Number of indices.")
    documents: int = Field(default=0, ge=0, description="Documents in primary shards.")
    store_bytes: int = Field(default=0, ge=0, description="Bytes on disk, replicas included.")


class ClusterStatus(StatusBase):
    """What the operator last observed about the cluster."""

    phase: ClusterPhase | None = Field(default=None, description="Summary of the cluster's state.")
    last_checked_time: datetime | None = Field(
        default=None, description="When the cluster was last checked."
    )
    engine: Literal["elasticsearch", "opensearch"] | None = Field(
        default=None, description="Search engine answering at the endpoint."
    )
    distribution: str | None = Field(
        default=None, description="Distribution as reported by the engine (e.g. oss, default)."
    )
    version: str | None = Field(default=None, description="Engine version, e.g. 7.10.2.")
    cluster_name: str | None = Field(default=None, description="The engine's cluster name.")
    health: Literal["green", "yellow", "red"] | None = Field(
        default=None, description="Cluster health."
    )
    nodes: int | None = Field(default=None, description="Number of nodes.")
    data_nodes: int | None = Field(default=None, description="Number of data nodes.")
    active_shards: int | None = Field(default=None, description="Active shards.")
    unassigned_shards: int | None = Field(default=None, description="Unassigned shards.")
    indices: IndexTotals | None = Field(
        default=None, description="User indices (not system or dot-prefixed)."
    )
    system_indices: IndexTotals | None = Field(
        default=None, description="System and dot-prefixed indices, counted apart."
    )
    read_only: bool | None = Field(default=None, description="Whether Ferry treats it read-only.")


Cluster = KindInfo(
    kind="Cluster",
    plural="clusters",
    short_names=("fcl", "fcluster"),
    description="An Elasticsearch or OpenSearch endpoint that Ferry migrates from or to. "
    "Ferry keeps its engine, version, health and size in status.",
    spec=ClusterSpec,
    status=ClusterStatus,
    printer_columns=(
        PrinterColumn("Engine", ".status.engine", description="elasticsearch or opensearch."),
        PrinterColumn("Version", ".status.version", description="Engine version."),
        PrinterColumn("Health", ".status.health", description="Cluster health."),
        PrinterColumn("Phase", ".status.phase", description="Summary of the state."),
        condition_column("Ready", "True when the cluster answers and its health is green "
                         "or yellow."),
        PrinterColumn("Endpoint", ".spec.endpoint", priority=1,
                      description="URL of the REST endpoint."),
        PrinterColumn("Docs", ".status.indices.documents", "integer", priority=1,
                      description="Documents in user indices (primaries)."),
        AGE_COLUMN,
    ),
)
