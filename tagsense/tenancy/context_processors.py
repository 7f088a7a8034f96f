from .resolve import memberships_of


def tenancy(request):
    """The user's organizations for the switcher; the current one comes from the view."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"user_memberships": memberships_of(user)}
