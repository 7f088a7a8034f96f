"""Who acts, for which organization, within which request: carried by a context variable.

Set by RequestContextMiddleware (web), the tenancy base classes (pages and API, once the
organization is resolved) and the Celery task base (workers). Read by audit.record().
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accounts.models import Membership, Organization


@dataclass(frozen=True)
class Actor:
    """The author of an action: a user, an API token, a named system task, or nobody yet."""

    kind: str  # "user" | "token" | "system" | "anonymous"
    id: str = ""
    label: str = ""

    USER = "user"
    TOKEN = "token"  # noqa: S105 - an actor kind, not a secret
    SYSTEM = "system"
    ANONYMOUS = "anonymous"

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        if user is None or not getattr(user, "is_authenticated", False):
            return cls(cls.ANONYMOUS)
        return cls(cls.USER, str(user.pk), user.get_username())

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(cls.SYSTEM, name, name)

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Actor:
        return cls(data.get("kind", cls.ANONYMOUS), data.get("id", ""), data.get("label", ""))


@dataclass(frozen=True)
class TenantContext:
    actor: Actor = field(default_factory=lambda: Actor(Actor.ANONYMOUS))
    organization: Organization | None = None
    membership: Membership | None = None
    request_id: str = ""
    ip_address: str | None = None
    user_agent: str = ""


# TenantContext is a frozen dataclass: the shared default cannot be mutated.
_current: ContextVar[TenantContext] = ContextVar(
    "tagsense_tenant_context",
    default=TenantContext(),  # noqa: B039
)


def current() -> TenantContext:
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def use(**changes: Any) -> Iterator[TenantContext]:
    """Run a block with some fields of the context replaced; restored on exit."""
    ctx = replace(_current.get(), **changes)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
