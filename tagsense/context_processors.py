from django.conf import settings


def site(request):
    from accounts.services import may_create_organization

    user = getattr(request, "user", None)
    return {
        "signup_open": settings.ACCOUNT_ALLOW_SIGNUP,
        "can_create_organization": user is not None and may_create_organization(user),
    }
