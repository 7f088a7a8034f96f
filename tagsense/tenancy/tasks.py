"""The Celery task base that carries organization and actor from the caller into the worker."""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.canvas import Signature
from celery.result import AsyncResult
from django.db import transaction
from kombu import Producer

from . import context, get_organization_model
from .db import tenant_scope
from .models import Organization

TENANCY_KWARG = "_tenancy"


class TenantTask(Task[..., Any]):
    """Enqueue from inside a request or another task and the worker runs with the same
    organization (and row-level-security setting), actor and request id.

    Enqueue from inside a transaction with `.delay_on_commit()` so the task never runs before
    the data it needs is committed, or after a rollback.

    With `tenant_transaction = True` (the default) the whole task body is one tenant
    transaction. Long tasks set it False and open tenant_scope() per unit of work; the
    organization is still in context.current().
    """

    abstract = True
    tenant_transaction = True
    # The _tenancy keyword is not in the task's signature: skip Celery's argument check.
    typing = False

    @staticmethod
    def _context_meta() -> dict[str, Any]:
        ctx = context.current()
        return {
            "organization_id": ctx.organization.pk if ctx.organization else None,
            "actor": ctx.actor.as_dict(),
            "request_id": ctx.request_id,
        }

    def apply_async(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        task_id: str | None = None,
        producer: Producer | None = None,
        link: Signature[Any] | list[Signature[Any]] | None = None,
        link_error: Signature[Any] | list[Signature[Any]] | None = None,
        shadow: str | None = None,
        **options: Any,
    ) -> AsyncResult[Any]:
        kwargs = dict(kwargs or {})
        kwargs.setdefault(TENANCY_KWARG, self._context_meta())
        return super().apply_async(
            args=args,
            kwargs=kwargs,
            task_id=task_id,
            producer=producer,
            link=link,
            link_error=link_error,
            shadow=shadow,
            **options,
        )

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """Enqueue once the current transaction commits, with the context of *now* (by commit
        time the request's or task's tenant scope has already closed)."""
        kwargs[TENANCY_KWARG] = self._context_meta()
        transaction.on_commit(lambda: self.apply_async(args=args, kwargs=kwargs))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        meta = kwargs.pop(TENANCY_KWARG, None) or {}
        actor = context.Actor.from_dict(meta["actor"]) if meta.get("actor") else None
        if actor is None or actor.kind == context.Actor.ANONYMOUS:
            actor = context.Actor.system(self.name)
        request_id = meta.get("request_id") or context.new_request_id()
        organization: Organization | None = None
        if meta.get("organization_id"):
            organization = get_organization_model().objects.get(pk=meta["organization_id"])
        with context.use(
            actor=actor, request_id=request_id, organization=organization, membership=None
        ):
            if organization is not None and self.tenant_transaction:
                with tenant_scope(organization, actor=actor):
                    return super().__call__(*args, **kwargs)
            return super().__call__(*args, **kwargs)
