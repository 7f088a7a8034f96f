"""The Celery task base that carries organization and actor from the caller into the worker."""

from __future__ import annotations

from typing import Any

from celery import Task
from django.db import transaction

from . import context, get_organization_model
from .db import tenant_scope

TENANCY_KWARG = "_tenancy"


class TenantTask(Task):
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

    def apply_async(self, args=None, kwargs=None, **options):
        kwargs = dict(kwargs or {})
        kwargs.setdefault(TENANCY_KWARG, self._context_meta())
        return super().apply_async(args=args, kwargs=kwargs, **options)

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
        organization = None
        if meta.get("organization_id"):
            organization = get_organization_model().objects.get(pk=meta["organization_id"])
        with context.use(
            actor=actor, request_id=request_id, organization=organization, membership=None
        ):
            if organization is not None and self.tenant_transaction:
                with tenant_scope(organization, actor=actor):
                    return super().__call__(*args, **kwargs)
            return super().__call__(*args, **kwargs)
