from django.conf import settings


def site(request):
    return {"signup_open": settings.ACCOUNT_ALLOW_SIGNUP}
