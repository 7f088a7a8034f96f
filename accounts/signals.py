"""Authentication and Django-admin activity into the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

import audit
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import all_tenants, user_scope

from .models import Membership, Organization, User


def _organizations_of(user: User) -> list[Organization]:
    with user_scope(user):
        return [
            m.organization
            for m in Membership.objects.filter(user=user).select_related("organization")
        ]


def _record_for_user(action: str, user: User, data: dict[str, Any], actor: Actor) -> None:
    """Into each organization the user belongs to, so every organization sees its members'
    sign-ins; into the global chain when they belong to none."""
    organizations = _organizations_of(user)
    with transaction.atomic():
        for organization in organizations or [None]:
            audit.record(action, target=user, data=data, organization=organization, actor=actor)


@receiver(user_logged_in, dispatch_uid="audit_login")
def on_login(sender, request, user, **kwargs):
    _record_for_user("auth.login", user, {"email": user.email}, Actor.for_user(user))


@receiver(user_logged_out, dispatch_uid="audit_logout")
def on_logout(sender, request, user, **kwargs):
    if user is not None:
        _record_for_user("auth.logout", user, {"email": user.email}, Actor.for_user(user))


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs):
    # Credentials arrive cleansed (Django masks the password); keep only the identifier.
    identifier = str(credentials.get("email") or credentials.get("username") or "")[:254]
    user = User.objects.filter(email__iexact=identifier).first() if identifier else None
    data = {"email": identifier}
    anonymous = Actor(Actor.ANONYMOUS, "", identifier)
    if user is None:
        audit.record("auth.login_failed", data=data, organization=None, actor=anonymous)
    else:
        _record_for_user("auth.login_failed", user, data, anonymous)


_ADMIN_ACTIONS = {ADDITION: "admin.add", CHANGE: "admin.change", DELETION: "admin.delete"}


@receiver(post_save, sender=LogEntry, dispatch_uid="audit_admin_change")
def on_admin_change(sender, instance: LogEntry, created: bool, **kwargs):
    if not created:
        return
    organization = None
    model = instance.content_type.model_class() if instance.content_type_id else None
    if model is not None and instance.object_id:
        with all_tenants():
            obj = model._default_manager.filter(pk=instance.object_id).first()
        if isinstance(obj, Organization):
            organization = obj
        elif obj is not None and getattr(obj, "organization_id", None):
            organization = Organization.objects.get(pk=obj.organization_id)
    audit.record(
        _ADMIN_ACTIONS.get(instance.action_flag, "admin.change"),
        target=(
            instance.content_type.model if instance.content_type_id else "",
            instance.object_id or "",
            instance.object_repr,
        ),
        data={"message": instance.get_change_message()},
        organization=organization,
        actor=Actor.for_user(instance.user),
    )
