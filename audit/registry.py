"""Stable names of every action the audit log records. Each app registers its own in
audit_events.py; audit.record() refuses a name that is not registered."""

from dataclasses import dataclass


@dataclass(frozen=True)
class AuditAction:
    name: str
    description: str


_registry: dict[str, AuditAction] = {}


def register(name: str, description: str) -> AuditAction:
    if name in _registry and _registry[name].description != description:
        raise ValueError(f"audit action {name!r} registered twice")
    action = AuditAction(name, description)
    _registry[name] = action
    return action


def get(name: str) -> AuditAction:
    try:
        return _registry[name]
    except KeyError:
        raise ValueError(f"unregistered audit action {name!r}") from None


def all_actions() -> list[AuditAction]:
    return sorted(_registry.values(), key=lambda a: a.name)
