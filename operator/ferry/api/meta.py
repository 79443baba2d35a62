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
    # Rules on the whole object (``self`` is the resource): transition rules that read
    # the stored status, e.g. a field fixed once a phase is reached.
    object_validations: tuple[dict[str, str], ...] = field(default_factory=tuple)

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



def fixed_once_started(field: str, open_phases: tuple[str, ...], what: str,
                       first_started: str) -> dict[str, str]:
    """An object rule (it reads the stored status): ``spec.<field>`` may change only
    while the stored phase is unset or one of ``open_phases``; adding or removing the
    field is a change too. Written with has(), not the optional ``?.``: the API
    server's cost estimate of ``?.`` on an object exceeds the rule budget."""
    phases = ", ".join(f"'{p}'" for p in open_phases)
    new, old = f"self.spec.{field}", f"oldSelf.spec.{field}"
    return {
        "rule": f"!has(oldSelf.status) || !has(oldSelf.status.phase) || "
                f"oldSelf.status.phase in [{phases}] || (has({new}) == has({old}) && "
                f"(!has({new}) || {new} == {old}))",
        "message": f"spec.{field} cannot change once {what} has started (phase "
                   f"{first_started} or later): its plan is fixed; delete and re-create "
                   "it to change it",
        "fieldPath": f".spec.{field}",
        "reason": "FieldValueForbidden",
    }
