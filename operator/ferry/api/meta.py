"""What the CRD generator needs to know about a kind beyond its spec and status."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

GROUP = "ferry.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "ferry"


@dataclass(frozen=True)
class PrinterColumn:
    """An additionalPrinterColumn: what `kubectl get` shows (priority 1: with -o wide)."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str | None = None


@dataclass(frozen=True)
class ScaleSubresource:
    """The scale subresource: `kubectl scale`, HPA and KEDA read and set replicas here."""

    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str | None = None


@dataclass(frozen=True)
class KindInfo:
    """One namespaced kind of the ferry.dev group."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    printer_columns: tuple[PrinterColumn, ...] = ()
    scale: ScaleSubresource | None = None
    # Rules on the whole spec that need oldSelf (transition rules) or several fields.
    spec_validations: tuple[dict[str, str], ...] = field(default_factory=tuple)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", "date",
                           description="Time since the resource was created.")


def condition_column(type_: str, description: str, priority: int = 0) -> PrinterColumn:
    """A column showing one condition's status (True, False, Unknown; empty if unset)."""
    return PrinterColumn(type_, f'.status.conditions[?(@.type=="{type_}")].status',
                         description=description, priority=priority)

