"""The end of a SAML sign-in, replacing allauth's `saml_finish_acs` view (same URL and name),
and the single logout address, replacing allauth's `saml_sls` view.

allauth's ACS view stores the POSTed response and redirects here. This view validates it with
python3-saml under settings that no stored configuration can weaken (strict mode, signed
assertions, no deprecated algorithms, the audience, recipient, destination and validity
window), accepts only responses to a sign-in this browser started (InResponseTo), refuses an
assertion seen before (replay), and audits every refusal with its reason.
"""

from __future__ import annotations

import binascii
import logging
from typing import Any

from allauth.account.internal.decorators import login_not_required
from allauth.core.internal import httpkit
from allauth.socialaccount.helpers import complete_social_login
from allauth.socialaccount.providers.base.constants import AuthProcess
from allauth.socialaccount.providers.saml.utils import build_saml_config, prepare_django_request
from allauth.socialaccount.providers.saml.views import FinishACSView, SLSView
from allauth.socialaccount.sessions import LoginSession
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request

from . import oidc, sso
from .adapters import refuse

logger = logging.getLogger(__name__)


def strict_config(request: HttpRequest, app: Any) -> dict[str, Any]:
    """allauth's python3-saml settings for the app, with our security floor on top."""
    config = build_saml_config(request, app.settings, app.client_id)
    config["strict"] = True
    config["security"].update(sso.STRICT_SECURITY)
    certificates = app.settings.get("idp", {}).get("certificates") or []
    if len(certificates) > 1:  # a rotation in progress: either certificate may sign
        config["idp"]["x509certMulti"] = {"signing": certificates}
    return config


@method_decorator(login_not_required, name="dispatch")
class StrictFinishACSView(FinishACSView):
    def dispatch(self, request: HttpRequest, organization_slug: str) -> HttpResponse:
        provider = self.get_provider(organization_slug)
        organization = sso.organization_for_app(provider.app)
        acs_session = LoginSession(request, "saml_acs_session", "saml-acs-session")
        stored = acs_session.store.get("request")
        acs_session.delete()
        if not stored or organization is None:
            return refuse(request, organization, "no SAML response to process", status=400)
        acs_request = httpkit.deserialize_request(stored, HttpRequest())
        auth = OneLogin_Saml2_Auth(
            prepare_django_request(acs_request), strict_config(acs_request, provider.app)
        )
        reason = ""
        try:
            auth.process_response(request_id=None)  # InResponseTo is matched below
        except (binascii.Error, etree.LxmlError, ValueError):
            reason = "the SAML response is not well-formed"
        except (OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError) as exc:
            reason = str(exc)
        if not reason and auth.get_errors():
            reason = auth.get_last_error_reason() or ", ".join(auth.get_errors())
        if not reason and not auth.is_authenticated():
            reason = "the IdP did not authenticate the user"
        if reason:
            logger.warning("SAML response refused for %s: %s", organization.slug, reason)
            return refuse(request, organization, reason)

        try:  # first, so a replay is named as such wherever it is replayed
            sso.consume_assertion(
                organization,
                auth.get_last_assertion_id(),
                auth.get_last_assertion_not_on_or_after(),
            )
        except sso.ReplayError as exc:
            return refuse(request, organization, str(exc))
        in_response_to = auth.get_last_response_in_response_to()
        if not in_response_to:
            return refuse(request, organization, "IdP-initiated sign-in is not accepted")
        try:
            state = provider.unstash_redirect_state(request, in_response_to)
        except PermissionDenied:
            return refuse(
                request,
                organization,
                "InResponseTo does not match a sign-in started in this browser",
            )

        login = provider.sociallogin_from_response(request, auth)
        # Signing in, or a signed-in member connecting the IdP to their account (the state was
        # stashed by this browser's own start of the flow).
        if state.get("process") not in (AuthProcess.LOGIN, AuthProcess.CONNECT):
            state["process"] = AuthProcess.LOGIN
        login.state = state
        return complete_social_login(request, login)


finish_acs = StrictFinishACSView.as_view()


@method_decorator(csrf_exempt, name="dispatch")  # the IdP posts here (HTTP-POST binding)
@method_decorator(login_not_required, name="dispatch")
class AuditedSLSView(SLSView):
    """Single logout sent by the IdP, replacing allauth's `saml_sls` view (same URL and name).

    Validated under strict_config like sign-ins (so every certificate of a rotation is
    accepted, and a logout request must be signed when the organization wants signed
    messages); the ended session is audited as `auth.logout` with `"via": "sso"`, a refused
    request as `sso.logout_rejected` with its reason.
    """

    def dispatch(self, request: HttpRequest, organization_slug: str) -> HttpResponse:
        from allauth.account.adapter import get_adapter as get_account_adapter

        provider = self.get_provider(organization_slug)
        organization = sso.organization_for_app(provider.app)
        if organization is None:
            return HttpResponse("Unknown identity provider.", status=404)
        request_data = prepare_django_request(request)
        auth = OneLogin_Saml2_Auth(request_data, strict_config(request, provider.app))
        account_adapter = get_account_adapter(request)
        user = request.user if request.user.is_authenticated else None

        def end_session() -> None:
            request.logout_via = "sso"  # read by accounts.signals.on_logout
            account_adapter.logout(request)

        redirect_to = None
        reason = ""
        try:
            redirect_to = auth.process_slo(
                delete_session_cb=end_session, keep_local_session=user is None
            )
        except (binascii.Error, etree.LxmlError, ValueError):
            reason = "the logout message is not well-formed"
        except (OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError) as exc:
            reason = str(exc)
        if not reason and auth.get_errors():
            reason = _logout_error(auth, request_data)
        if reason:
            logger.warning("SAML logout refused for %s: %s", organization.slug, reason)
            with transaction.atomic():
                sso.record_logout_rejection(organization, reason, user)
            return HttpResponse(
                f"Single logout refused: {reason}", content_type="text/plain", status=400
            )
        return HttpResponseRedirect(redirect_to or account_adapter.get_logout_redirect_url(request))


sls = AuditedSLSView.as_view()


def _logout_error(auth: OneLogin_Saml2_Auth, request_data: dict[str, Any]) -> str:
    """Why python3-saml refused a logout message: it keeps a logout request's own reason
    (issuer, destination, expiry) to itself, so ask the request again."""
    errors = auth.get_errors()
    saml_request = request_data.get("get_data", {}).get("SAMLRequest")
    if errors == ["invalid_logout_request"] and saml_request:
        logout_request = OneLogin_Saml2_Logout_Request(auth.get_settings(), saml_request)
        logout_request.is_valid(request_data)
        if logout_request.get_error():
            return str(logout_request.get_error())
    return auth.get_last_error_reason() or ", ".join(errors)


@login_not_required
def sso_start(request: HttpRequest) -> HttpResponse:
    """The login page's "sign in with SSO" form: from an organization's slug to its IdP."""
    from django.contrib import messages
    from django.shortcuts import redirect
    from django.urls import reverse

    from .models import Organization

    slug = (request.GET.get("organization") or "").strip().lower()[:64]
    organization = Organization.objects.filter(slug=slug).first() if slug else None
    saml = organization is not None and sso.saml_app(organization) is not None
    openid = organization is not None and oidc.configuration(organization) is not None
    if not (saml or openid):
        messages.error(request, "That organization has no single sign-on; check its short name.")
        return redirect("account_login")
    saml_url = reverse("saml_login", kwargs={"organization_slug": organization.slug})
    oidc_url = reverse(
        "openid_connect_login", kwargs={"provider_id": oidc.provider_id(organization)}
    )
    if saml and openid:
        from django.shortcuts import render

        context = {"sso_organization": organization, "saml_url": saml_url, "oidc_url": oidc_url}
        return render(request, "accounts/sso_choose.html", context)
    return redirect(saml_url if saml else oidc_url)
