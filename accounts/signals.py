"""Authentication activity into the audit log."""

from __future__ import annotations

import time
from typing import Any

from allauth.account import signals as allauth_signals
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

import audit
from audit.registry import AuditAction
from tagsense.security import SESSION_SEEN, SESSION_STARTED
from tagsense.tenancy.context import Actor
from tagsense.tenancy.context import current as current_context
from tagsense.tenancy.resolve import memberships_of

from . import audit_events, oidc
from .models import User
from .sso.provisioning import groups_from, provision_sso_login
from .sso.saml import organization_for_app
from .sso.session import SAML_SESSION_KEY, SESSION_IDP_KEY, remember_saml_session
from .throttle import claim, login_key, source_network, within_cap


def record_for_user(action: AuditAction, user: User, data: dict[str, Any], actor: Actor) -> None:
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
    if request is not None and hasattr(request, "session"):
        # The session's clock starts now (tagsense/security.py).

        request.session[SESSION_STARTED] = request.session[SESSION_SEEN] = time.time()
        # Whichever way this sign-in went, no IdP vouches for it yet: on_sso_login says so
        # for a SAML sign-in (allauth's signal follows Django's).
        request.session.pop(SESSION_IDP_KEY, None)
        request.session.pop(SAML_SESSION_KEY, None)
    record_for_user(audit_events.LOGIN, user, {"email": user.email}, Actor.for_user(user))


@receiver(user_logged_out, dispatch_uid="audit_logout")
def on_logout(sender, request, user, **kwargs):
    if user is None:
        return
    reason = getattr(request, "session_expired", None)
    if reason:
        data = {"email": user.email, "reason": reason}
        record_for_user(audit_events.SESSION_EXPIRED, user, data, Actor.for_user(user))
    else:
        data = {"email": user.email}
        if getattr(request, "logout_via", None):  # single logout from the IdP (saml_views)
            data["via"] = request.logout_via
        record_for_user(audit_events.LOGOUT, user, data, Actor.for_user(user))


# A refused sign-in is audited at most once a minute per account and source (and those naming
# no account at most this often in all), so a password-guessing loop cannot flood the log.
UNKNOWN_SIGN_IN_REFUSALS_PER_INTERVAL = 60


def record_refused_sign_in(action: AuditAction, credentials: dict[str, Any]) -> bool:
    """Audit a failed (`auth.login_failed`) or locked (`auth.login_locked`) sign-in with the
    address tried, never the password: into the account's organizations, or the global chain
    for an address of no account. Returns whether an event was written (accounts.throttle)."""

    account = login_key(credentials)
    if not claim(action.name, account, source_network(current_context().ip_address)):
        return False
    identifier = str(credentials.get("email") or credentials.get("username") or "")[:254]
    user = User.objects.filter(email__iexact=account).first() if account else None
    data = {"email": identifier}
    anonymous = Actor(Actor.ANONYMOUS, "", identifier)
    if user is None:
        if not within_cap(f"{action.name}:unknown", UNKNOWN_SIGN_IN_REFUSALS_PER_INTERVAL):
            return False
        audit.record(action, data=data, organization=None, actor=anonymous)
    else:
        record_for_user(action, user, data, anonymous)
    return True


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs):
    # Credentials arrive cleansed (Django masks the password); keep only the identifier.
    record_refused_sign_in(audit_events.LOGIN_FAILED, credentials)


def record_lockout(credentials: dict[str, Any]) -> None:
    """A sign-in refused by the lock-out (accounts.adapters.AccountAdapter.pre_authenticate)."""
    record_refused_sign_in(audit_events.LOGIN_LOCKED, credentials)


@receiver(allauth_signals.user_logged_in, dispatch_uid="sso_provision")
def on_sso_login(sender, request, user, sociallogin=None, **kwargs):
    """Each SAML or OIDC sign-in re-applies the IdP's groups in the IdP's own organization
    only."""
    provider = sociallogin.provider if sociallogin is not None else None
    if provider is None or provider.id not in ("saml", "openid_connect"):
        return

    app = provider.app
    if provider.id == "openid_connect":
        organization = oidc.provision(app, user, sociallogin.account.extra_data)
    else:
        organization = organization_for_app(app)
        if organization is not None:
            groups = groups_from(
                sociallogin.account.extra_data, app.settings.get("groups_attribute", "")
            )
            provision_sso_login(organization, user, groups)
    if organization is not None and request is not None and hasattr(request, "session"):
        # The session is the IdP's: it opens that organization only
        # (sso.config.sso_session_missing).
        request.session[SESSION_IDP_KEY] = organization.pk
        if provider.id == "saml":  # what its single logout must name (saml_views.sls)
            remember_saml_session(request, organization, sociallogin.state)


@receiver(allauth_signals.password_changed, dispatch_uid="audit_password_changed")
@receiver(allauth_signals.password_set, dispatch_uid="audit_password_set")
def on_password_changed(sender, request, user, **kwargs):
    record_for_user(audit_events.PASSWORD_CHANGE, user, {"email": user.email}, Actor.for_user(user))


@receiver(allauth_signals.password_reset, dispatch_uid="audit_password_reset")
def on_password_reset(sender, request, user, **kwargs):
    record_for_user(audit_events.PASSWORD_RESET, user, {"email": user.email}, Actor.for_user(user))


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
            audit_events.EMAIL_CHANGE,
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


# Two-factor authentication. Only the kind of authenticator is recorded, never a secret or code.
# Adding and removing are audited from the model's own signals, so the event is written in the
# same transaction as the change (allauth's own signals fire after commit).
def _mfa_actor(user: User) -> Actor:
    """The signed-in actor of the request (the user, or a superuser in the admin)."""
    actor = current_context().actor
    return actor if actor.kind != Actor.ANONYMOUS else Actor.for_user(user)


@receiver(post_save, sender=Authenticator, dispatch_uid="audit_mfa_saved")
def on_authenticator_saved(sender, instance, created, **kwargs):
    if not created:
        return  # a code was used or the codes were viewed: not a change of set-up
    user = instance.user
    if instance.type == Authenticator.Type.RECOVERY_CODES:
        action = audit_events.MFA_RECOVERY_CODES
    else:
        action = audit_events.MFA_ADD
    record_for_user(action, user, {"email": user.email, "type": instance.type}, _mfa_actor(user))


@receiver(post_delete, sender=Authenticator, dispatch_uid="audit_mfa_deleted")
def on_authenticator_deleted(sender, instance, **kwargs):
    # Recovery codes are deleted when they are replaced (auth.mfa_recovery_codes follows) or
    # together with the authenticator app (auth.mfa_remove covers both).
    if instance.type == Authenticator.Type.RECOVERY_CODES:
        return
    user = instance.user
    data = {"email": user.email, "type": instance.type}
    record_for_user(audit_events.MFA_REMOVE, user, data, _mfa_actor(user))


@receiver(mfa_signals.authenticator_used, dispatch_uid="audit_mfa_used")
def on_mfa_used(sender, request, user, authenticator, **kwargs):
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        data = {"email": user.email, "type": authenticator.type}
        record_for_user(audit_events.MFA_RECOVERY_CODE_USED, user, data, Actor.for_user(user))


@receiver(mfa_signals.authentication_failed, dispatch_uid="audit_mfa_failed")
def on_mfa_failed(sender, request, user, **kwargs):
    # Before the second factor the user is not signed in yet: the actor is anonymous.
    data = {"email": user.email}
    record_for_user(audit_events.MFA_FAILED, user, data, Actor(Actor.ANONYMOUS, "", user.email))
