"""The Django admin for superusers: every organization's rows (all_tenants), and every add,
change and delete (bulk "delete selected" included) recorded in the audit log."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.db import transaction

import audit
from accounts import audit_events as accounts_audit_events
from audit.registry import AuditAction
from tagsense.tenancy import get_organization_model
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import all_tenants


def _organization_of(obj: Any):
    Organization = get_organization_model()  # noqa: N806 - a model class
    if isinstance(obj, Organization):
        return obj
    organization_id = getattr(obj, "organization_id", None)
    if organization_id is None:
        return None
    return Organization.objects.filter(pk=organization_id).first()


def record_admin_action(
    action: AuditAction, request, objects: list[Any], message: str = ""
) -> None:
    """One audit event per object, in the object's organization (global when it has none)."""
    meta_of = {}
    with transaction.atomic():
        for obj in objects:
            meta = meta_of.setdefault(type(obj), obj._meta)
            audit.record(
                action,
                target=(f"{meta.app_label}.{meta.model_name}", obj.pk, str(obj)),
                data={"message": message} if message else {},
                organization=_organization_of(obj),
                actor=Actor.for_user(request.user),
            )


class AuditedModelAdmin:
    """Mixed into every ModelAdmin registered on the TagSense site."""

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        record_admin_action(
            accounts_audit_events.ADMIN_ADD, request, [obj], entry.get_change_message()
        )
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        record_admin_action(
            accounts_audit_events.ADMIN_CHANGE, request, [obj], entry.get_change_message()
        )
        return entry

    def log_deletions(self, request, queryset):
        objects = list(queryset)
        entries = super().log_deletions(request, queryset)
        record_admin_action(accounts_audit_events.ADMIN_DELETE, request, objects)
        return entries


class TagSenseAdminSite(admin.AdminSite):
    site_header = "TagSense administration"
    site_title = "TagSense admin"

    def has_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedModelAdmin):
            admin_class = type(admin_class.__name__, (AuditedModelAdmin, admin_class), {})
        return super().register(model_or_iterable, admin_class, **options)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def scoped(request, *args, **kwargs):
            if not self.has_permission(request):
                return inner(request, *args, **kwargs)
            with all_tenants():
                response = inner(request, *args, **kwargs)
                if hasattr(response, "render") and not response.is_rendered:
                    response.render()
            return response

        return scoped


class TagSenseAdminConfig(AdminConfig):
    default_site = "tagsense.admin_site.TagSenseAdminSite"
