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
    from .models import Member, Organization


@dataclass(frozen=True)
class Principal:
    """Who answers for an action, whatever credential carried it: a user (by a browser session
    or any of their personal tokens), a service account (by any of its tokens) or a named
    system task. Separation of duties compares principals (`same_principal`), never
    credentials: two tokens of one service account are one principal, as are a person's
    session and their token. Stored as its key, "user:12" or "service_account:3"."""

    kind: str  # "user" | "service_account" | "system"
    id: str

    USER = "user"
    SERVICE_ACCOUNT = "service_account"
    SYSTEM = "system"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    def __str__(self) -> str:
        return self.key

    @classmethod
    def parse(cls, key: str | None) -> Principal | None:
        """The principal a stored key names, or None for an empty or malformed one."""
        kind, _, id_ = (key or "").partition(":")
        if kind not in (cls.USER, cls.SERVICE_ACCOUNT, cls.SYSTEM) or not id_:
            return None
        return cls(kind, id_)


def same_principal(a: Actor | Principal | str | None, b: Actor | Principal | str | None) -> bool:
    """True when both name one known principal (an Actor, a Principal or a stored key). An
    unknown principal (anonymous, or nothing recorded) is never the same as anyone."""

    def resolve(value: Actor | Principal | str | None) -> Principal | None:
        if isinstance(value, Actor):
            return value.principal
        if isinstance(value, str):
            return Principal.parse(value)
        return value

    first, second = resolve(a), resolve(b)
    return first is not None and first == second


@dataclass(frozen=True)
class Actor:
    """The author of an action: a user, an API token, a named system task, or nobody yet.

    A token actor's `id` is the token's; `principal_key` names who it acts for (set by the
    admission policy's token_actor, gate.py). It does not take part in equality."""

    kind: str  # "user" | "token" | "system" | "anonymous"
    id: str = ""
    label: str = ""
    principal_key: str = field(default="", compare=False)

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

    @property
    def principal(self) -> Principal | None:
        """Who answers for what this actor does; None for nobody (anonymous)."""
        if self.kind == self.USER and self.id:
            return Principal(Principal.USER, self.id)
        if self.kind == self.SYSTEM and self.id:
            return Principal(Principal.SYSTEM, self.id)
        if self.kind == self.TOKEN:
            return Principal.parse(self.principal_key)
        return None

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "id": self.id,
            "label": self.label,
            "principal": self.principal_key,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Actor:
        return cls(
            data.get("kind", cls.ANONYMOUS),
            data.get("id", ""),
            data.get("label", ""),
            data.get("principal", ""),
        )


@dataclass(frozen=True)
class TenantContext:
    actor: Actor = field(default_factory=lambda: Actor(Actor.ANONYMOUS))
    organization: Organization | None = None
    membership: Member | None = None
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
