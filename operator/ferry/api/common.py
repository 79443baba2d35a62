"""Types shared by every kind: references, conditions, progress."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

# A Kubernetes object name (DNS-1123 subdomain).
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
K8S_NAME = Annotated[str, Field(min_length=1, max_length=253, pattern=K8S_NAME_PATTERN)]
# A key inside a Secret or ConfigMap.
DATA_KEY = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]

# Bounds on the lists kept in status, so an object never outgrows etcd's limits.
MAX_STATUS_LIST = 20


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, snake_case in Python.

    Unknown fields are ignored rather than refused, so an operator that is older than
    the installed CRD still reads the fields it knows.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=True,
    )



def nested(model: type[BaseModel], description: str, **kwargs: Any) -> Any:
    """A nested object that always exists, defaulted to ``{}`` by the API server too.

    With ``default: {}`` in the CRD the server fills in the nested defaults even when
    the user leaves the whole object out, so ``kubectl get -o yaml`` shows the
    effective settings.
    """
    return Field(default_factory=model, description=description,
                 json_schema_extra={"default": {}}, **kwargs)


class LocalObjectReference(ApiModel):
    """A reference to another object in the same namespace."""

    name: K8S_NAME = Field(description="Name of the object, in the same namespace.")


class SecretKeySelector(ApiModel):
    """One key of a Secret in the same namespace. The value is read by the operator and
    never written to status, events or logs."""

    name: K8S_NAME = Field(description="Name of the Secret, in the same namespace.")
    key: DATA_KEY = Field(description="Key within the Secret's data.")


class ConfigMapKeySelector(ApiModel):
    """One key of a ConfigMap in the same namespace."""

    name: K8S_NAME = Field(description="Name of the ConfigMap, in the same namespace.")
    key: DATA_KEY = Field(description="Key within the ConfigMap's data.")


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """The state of one aspect of the resource, in the shape of metav1.Condition."""

    type: str = Field(
        description="Type of condition in CamelCase, e.g. Ready.",
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    reason: str = Field(
        description="Programmatic identifier of the reason for the last transition, in CamelCase.",
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    )
    message: str = Field(
        default="",
        description="Human-readable message about the transition. Never contains secrets.",
        max_length=32768,
    )
    last_transition_time: datetime = Field(
        description="When the condition last changed from one status to another."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The .metadata.generation the condition was set for.",
    )


CONDITIONS_FIELD_EXTRA = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


def conditions_field() -> Any:
    return Field(
        default_factory=list,
        description="Latest observations of the resource's state, keyed by type.",
        max_length=16,
        json_schema_extra=CONDITIONS_FIELD_EXTRA,
    )


class Failure(ApiModel):
    """One recorded failure: where and why, never the data itself."""

    time: datetime | None = Field(default=None, description="When the failure was recorded.")
    index: str | None = Field(default=None, description="Index the failure concerns, if any.")
    id: str | None = Field(default=None, description="Document id or shard the failure concerns.")
    reason: str = Field(description="What went wrong, as reported by the engine or the operator.")


class StatusBase(ApiModel):
    """What every kind's status starts with."""

    phase: str | None = Field(default=None, description="Summary of the state.")
    message: str | None = Field(default=None, description="Why it is in this phase.")
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this status was computed for."
    )
    conditions: list[Condition] = conditions_field()


class TimedStatus(StatusBase):
    """The status of a bounded job (Snapshot, Backfill): when it started and ended."""

    start_time: datetime | None = Field(default=None, description="When the work started.")
    completion_time: datetime | None = Field(default=None, description="When it ended.")


M = TypeVar("M", bound=BaseModel)


def dump_status(model: type[BaseModel], status: Any) -> dict[str, Any]:
    """A status as it goes to the API server: validated by the kind's status model and
    dumped by alias, unset fields left out. A key the model does not know is a bug in
    the operator, not something to drop silently."""
    parsed = status if isinstance(status, model) else model.model_validate(status)
    known = {f.alias or name for name, f in model.model_fields.items()}
    if isinstance(status, dict):
        unknown = sorted(k for k, v in status.items() if k not in known and v is not None)
        if unknown:
            raise ValueError(f"{model.__name__} has no field(s) {', '.join(unknown)}")
    return parsed.model_dump(by_alias=True, exclude_none=True, mode="json")


def describe_validation(exc: ValidationError, root: str = "spec") -> str:
    """The first problem of a failed parse, with the field's path as in the manifest:
    ``spec.auth.basic.secretName: Field required (and 1 more)``."""
    first = exc.errors()[0]
    path = ".".join([root, *(str(p) for p in first["loc"])])
    more = exc.error_count() - 1
    return f"{path}: {first['msg']}" + (f" (and {more} more)" if more else "")


def parse_spec(model: type[M], spec: Any) -> M:
    """Parse a spec the API server accepted. A failure means a CRD older than the
    operator; it becomes InvalidSpec with the first problem named."""
    from ferry.errors import InvalidSpec

    try:
        return model.model_validate(spec)
    except ValidationError as exc:
        raise InvalidSpec(f"spec does not parse: {describe_validation(exc)}") from None
