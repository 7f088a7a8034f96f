"""The Django admin for superusers: every organization's rows (all_tenants), every change
audited through LogEntry (accounts/signals.py)."""

from functools import wraps

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

from tagsense.tenancy.db import all_tenants


class TagSenseAdminSite(admin.AdminSite):
    site_header = "TagSense administration"
    site_title = "TagSense admin"

    def has_permission(self, request):
        return request.user.is_active and request.user.is_superuser

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
