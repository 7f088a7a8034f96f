from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        """Members join through an organization (invitation or SSO); self sign-up is opt-in."""
        return settings.ACCOUNT_ALLOW_SIGNUP
