from django.conf import settings

from .services import may_create_organization


def site(request):
    """Whether the sign-in page offers to sign up, and whether the menus offer a new
    organization."""
    user = getattr(request, "user", None)
    return {
        "signup_open": settings.ACCOUNT_ALLOW_SIGNUP,
        "can_create_organization": user is not None and may_create_organization(user),
    }
