"""Authentication activity into the audit log."""

from __future__ import annotations

from typing import Any

from allauth.account import signals as allauth_signals
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

import audit
from tagsense.tenancy.context import Actor
from tagsense.tenancy.resolve import memberships_of

from .models import User


def record_for_user(action: str, user: User, data: dict[str, Any], actor: Actor) -> None:
    """Into each organization the user is an active member of (so each sees its members'
    sign-ins), or into the global chain when there is none. Chains are taken in id order so
    two sign-ins never wait on each other's locks in opposite orders."""
    organizations = sorted(
        (m.organization for m in memberships_of(user)), key=lambda organization: organization.pk
    )
    with transaction.atomic():
        for organization in organizations or [None]:
            audit.record(action, target=user, data=data, organization=organization, actor=actor)


@receiver(user_logged_in, dispatch_uid="audit_login")
def on_login(sender, request, user, **kwargs):
    record_for_user("auth.login", user, {"email": user.email}, Actor.for_user(user))


@receiver(user_logged_out, dispatch_uid="audit_logout")
def on_logout(sender, request, user, **kwargs):
    if user is not None:
        record_for_user("auth.logout", user, {"email": user.email}, Actor.for_user(user))


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
        record_for_user("auth.login_failed", user, data, anonymous)


@receiver(allauth_signals.user_logged_in, dispatch_uid="sso_provision")
def on_sso_login(sender, request, user, sociallogin=None, **kwargs):
    """Each SAML sign-in re-applies the IdP's groups in the IdP's own organization only."""
    provider = sociallogin.provider if sociallogin is not None else None
    if provider is None or provider.id != "saml":
        return
    from . import sso

    app = provider.app
    organization = sso.organization_for_app(app)
    if organization is None:  # pre_social_login refused these already
        return
    groups = sso.groups_from(
        sociallogin.account.extra_data, app.settings.get("groups_attribute", "")
    )
    sso.provision_sso_login(organization, user, groups)


@receiver(allauth_signals.password_changed, dispatch_uid="audit_password_changed")
@receiver(allauth_signals.password_set, dispatch_uid="audit_password_set")
def on_password_changed(sender, request, user, **kwargs):
    record_for_user("auth.password_change", user, {"email": user.email}, Actor.for_user(user))


@receiver(allauth_signals.password_reset, dispatch_uid="audit_password_reset")
def on_password_reset(sender, request, user, **kwargs):
    record_for_user("auth.password_reset", user, {"email": user.email}, Actor.for_user(user))


def _email_event(change: str):
    def receiver_(sender, request=None, user=None, **kwargs):
        if user is None:  # email_confirmed names only the address
            user = kwargs["email_address"].user
        addresses = {
            key: getattr(kwargs[key], "email", "")
            for key in ("email_address", "from_email_address", "to_email_address")
            if kwargs.get(key) is not None
        }
        record_for_user(
            "auth.email_change",
            user,
            {"email": user.email, "change": change, **addresses},
            Actor.for_user(user),
        )

    return receiver_


for _signal, _change in (
    (allauth_signals.email_added, "added"),
    (allauth_signals.email_removed, "removed"),
    (allauth_signals.email_changed, "primary changed"),
    (allauth_signals.email_confirmed, "confirmed"),
):
    _signal.connect(_email_event(_change), dispatch_uid=f"audit_email_{_change}", weak=False)
