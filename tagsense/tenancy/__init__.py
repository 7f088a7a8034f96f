"""The one place that knows about tenants.

- context.py: who is acting, for which organization, in which request (context variables).
- db.py: the per-transaction PostgreSQL settings that row-level security reads, and the policies.
- models.py: the abstract tenant model with its queryset and manager.
- gate.py: the admission gate both base classes call, and the refusals it raises.
- views.py / api.py: the page and DRF base classes that resolve the organization from the URL.
- middleware.py: the request context (request id, actor, client address).

The organization and membership models belong to the identity app; this layer (and the audit
log) reaches them only through the settings below, as Django's get_user_model() does the user.
"""

from __future__ import annotations

from typing import Any

# Not `apps`: importing the submodule tagsense.tenancy.apps rebinds that name in this package.
from django.apps import apps as django_apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def get_organization_model() -> type[Any]:
    """The tenant model: settings.TENANCY_ORGANIZATION_MODEL ("app_label.ModelName"). Its
    instances are `models.Organization`s to this layer; the class itself is only known at run
    time (the type checker sees what apps.get_model answers)."""
    return _get_model("TENANCY_ORGANIZATION_MODEL")


def get_membership_model() -> type[Any]:
    """A user's place in an organization: settings.TENANCY_MEMBERSHIP_MODEL. Its manager has
    `active()` and `pending()` (accepted or not); an instance has `organization`, `user` and
    `allows(action)` (a `models.Member`)."""
    return _get_model("TENANCY_MEMBERSHIP_MODEL")


def _get_model(setting: str) -> type[Any]:
    label: str = getattr(settings, setting)
    try:
        return django_apps.get_model(label, require_ready=False)
    except ValueError:
        raise ImproperlyConfigured(f"{setting} must be of the form 'app_label.ModelName'") from None
    except LookupError:
        raise ImproperlyConfigured(
            f"{setting} refers to model {label!r}, which is not installed"
        ) from None
