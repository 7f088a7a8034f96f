from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .resolve import memberships_of


def tenancy(request: HttpRequest) -> dict[str, Any]:
    """The user's organizations for the switcher; the current one comes from the view. Read
    only when a template shows them: an HTMX fragment never does (a user_scope and a query
    fewer on each)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"user_memberships": SimpleLazyObject(lambda: memberships_of(user))}
