"""The end of a SAML sign-in, replacing allauth's `saml_finish_acs` view (same URL and name),
and the single logout address, replacing allauth's `saml_sls` view.

allauth's ACS view stores the POSTed response and redirects here. This view validates it with
python3-saml under settings that no stored configuration can weaken (strict mode, signed
assertions, no deprecated algorithms, the validity window), then checks itself what
python3-saml leaves loose (binding_error: Destination, Audience and Recipient present and exact),
accepts only responses to a sign-in this browser started (InResponseTo), refuses an assertion
seen before (replay), and audits every refusal with its reason. The whole sign-in, just-in-time
provisioning included, is one transaction.
"""

from __future__ import annotations

import binascii
import logging
from typing import Any
from urllib.parse import unquote, urlsplit

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.internal.decorators import login_not_required
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.core.internal import httpkit
from allauth.socialaccount.helpers import complete_social_login
from allauth.socialaccount.providers.base.constants import AuthProcess
from allauth.socialaccount.providers.openid_connect.views import callback
from allauth.socialaccount.providers.saml.utils import build_saml_config
from allauth.socialaccount.providers.saml.views import FinishACSView, SLSView
from allauth.socialaccount.sessions import LoginSession
from django.contrib import messages
from django.core.exceptions import BadRequest, PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from . import oidc
from .adapters import refuse
from .models import Organization
from .sso.refusals import record_logout_rejection
from .sso.saml import (
    STRICT_SECURITY,
    ReplayError,
    advanced_settings,
    consume_assertion,
    organization_for_app,
    saml_app,
)
from .sso.session import SAML_STATE_KEY, saml_logout_mismatch, saml_session_of

logger = logging.getLogger(__name__)


def strict_config(request: HttpRequest, app: Any) -> dict[str, Any]:
    """allauth's python3-saml settings for the app, with our security floor on top."""
    config = build_saml_config(request, app.settings, app.client_id)
    config["strict"] = True
    config["security"].update(STRICT_SECURITY)
    certificates = app.settings.get("idp", {}).get("certificates") or []
    if len(certificates) > 1:  # a rotation in progress: either certificate may sign
        config["idp"]["x509certMulti"] = {"signing": certificates}
    return config


@login_not_required
def sp_metadata(request: HttpRequest, organization_slug: str) -> HttpResponse:
    """The organization's SP metadata (entity id, ACS and single logout addresses), replacing
    allauth's view at the same URL, which answers 404 until an IdP is saved: an admin gives
    this URL to the IdP first, and only then has the IdP's metadata to save. Any existing
    organization has one; a slug no organization has is a 404."""

    organization = Organization.objects.filter(slug=organization_slug).first()
    if organization is None:
        raise Http404("No such organization.")
    app = saml_app(organization)
    if app is not None and app.client_id == organization.slug:
        config = strict_config(request, app)
    else:  # no IdP yet: the same SP half, with a placeholder IdP that is never validated
        placeholder = {"entity_id": "", "x509cert": "", "sso_url": ""}
        provider_settings = {"idp": placeholder, "advanced": advanced_settings()}
        config = build_saml_config(request, provider_settings, organization.slug)
        config["security"].update(STRICT_SECURITY)
    saml_settings = OneLogin_Saml2_Settings(settings=config, sp_validation_only=True)
    return HttpResponse(
        saml_settings.get_sp_metadata(), content_type="application/samlmetadata+xml"
    )


def saml_request_data(request: HttpRequest) -> dict[str, Any]:
    """The request as python3-saml reads it (allauth's prepare_django_request reads the raw
    Host header, a KeyError for an HTTP/1.0 request without one): the host is Django's
    validated request.get_host(), which falls back to SERVER_NAME and raises DisallowedHost
    (answered 400) for a host outside ALLOWED_HOSTS. A request without a Host header (HTTP/1.0)
    is answered 400: the addresses a SAML message is checked against are built from it."""
    if not request.META.get("HTTP_HOST"):
        raise BadRequest("a Host header is required")
    return {
        "https": "on" if request.is_secure() else "off",
        "http_host": request.get_host(),
        "script_name": request.META.get("SCRIPT_NAME", ""),
        "path_info": request.META.get("PATH_INFO") or request.path_info,
        "get_data": request.GET.copy(),
        "post_data": request.POST.copy(),
    }


def saml_auth(request_data: dict[str, Any], config: dict[str, Any]) -> OneLogin_Saml2_Auth:
    """python3-saml's handler; settings it refuses (SP addresses built from a host it does not
    accept, such as a single-label name) answer 400, not a server error."""
    try:
        return OneLogin_Saml2_Auth(request_data, config)
    except OneLogin_Saml2_Error as exc:
        raise BadRequest("this host name cannot serve single sign-on") from exc


@method_decorator(login_not_required, name="dispatch")
class StrictFinishACSView(FinishACSView):
    def dispatch(self, request: HttpRequest, organization_slug: str) -> HttpResponse:
        provider = self.get_provider(organization_slug)
        organization = organization_for_app(provider.app)
        acs_session = LoginSession(request, "saml_acs_session", "saml-acs-session")
        stored = acs_session.store.get("request")
        acs_session.delete()
        if not stored or organization is None:
            return refuse(request, organization, "no SAML response to process", status=400)
        acs_request = httpkit.deserialize_request(stored, HttpRequest())
        auth = saml_auth(saml_request_data(acs_request), strict_config(acs_request, provider.app))
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
        if not reason:
            sp = auth.get_settings().get_sp_data()
            response = OneLogin_Saml2_Response(
                auth.get_settings(), acs_request.POST.get("SAMLResponse", "")
            )
            reason = binding_error(response, sp["assertionConsumerService"]["url"], sp["entityId"])
        if reason:
            logger.warning("SAML response refused for %s: %s", organization.slug, reason)
            return refuse(request, organization, reason)

        try:  # first, so a replay is named as such wherever it is replayed
            consume_assertion(
                organization,
                auth.get_last_assertion_id(),
                auth.get_last_assertion_not_on_or_after(),
            )
        except ReplayError as exc:
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
        # What single logout binds to (sso.session.remember_saml_session, at the sign-in itself).
        state[SAML_STATE_KEY] = {
            "name_id": auth.get_nameid() or "",
            "session_index": auth.get_session_index() or "",
        }
        login.state = state
        return complete_sso_login(request, login)


finish_acs = StrictFinishACSView.as_view()


def complete_sso_login(request: HttpRequest, login: Any) -> HttpResponse:
    """allauth's completion of a SAML or OpenID sign-in (or connect) in one transaction: the
    user, their e-mail address, the linked identity, the membership, its teams and role, and
    the audit events are all kept, or none is (a failure anywhere, an e-mail that cannot be
    sent included, leaves no half-provisioned account). Refusals are answers, not errors:
    their audit events are kept."""
    with transaction.atomic():
        try:
            return complete_social_login(request, login)
        except ImmediateHttpResponse as exc:  # a refusal: its audit event is kept
            return exc.response


@login_not_required
def oidc_callback(request: HttpRequest, provider_id: str) -> HttpResponse:
    """allauth's OpenID Connect callback (same URL and name), in one transaction like
    complete_sso_login."""

    with transaction.atomic():
        try:
            return callback(request, provider_id)
        except ImmediateHttpResponse as exc:
            return exc.response


_BEARER = OneLogin_Saml2_Constants.CM_BEARER
_NS = OneLogin_Saml2_Constants.NSMAP


def _has_dot_segments(url: str) -> bool:
    path = urlsplit(url).path
    return "\\" in path or any(
        segment in (".", "..") for segment in unquote(unquote(path)).split("/")
    )


def _same_endpoint(url: str, expected: str) -> bool:
    """The same address: scheme and host compared case-insensitively, the path exactly, and
    neither query, fragment nor user info."""
    got, want = urlsplit(url), urlsplit(expected)
    return (
        got.scheme.lower() == want.scheme.lower()
        and got.netloc.lower() == want.netloc.lower()
        and got.path == want.path
        and not (got.query or got.fragment or got.username or got.password)
    )


def _endpoint_error(url: str | None, what: str, expected: str) -> str:
    if not url:
        return f"the {what} is missing; it must be this organization's ACS URL {expected}"
    if _has_dot_segments(url):
        return f"the {what} {url[:300]!r} contains dot segments"
    if not _same_endpoint(url, expected):
        return f"the {what} {url[:300]!r} is not this organization's ACS URL {expected}"
    return ""


def binding_error(response: OneLogin_Saml2_Response, acs_url: str, entity_id: str) -> str:
    """Why a response python3-saml accepted is still not for this organization's ACS, or "".

    python3-saml (response.py) accepts a response without Destination, compares it as a
    prefix, accepts an assertion without Audience, and a Recipient that merely contains the
    ACS URL (or none at all). Here: the response's Destination, and the Recipient of every
    bearer SubjectConfirmation of the signed assertion, must be present and equal to the ACS
    URL with no dot segments; every AudienceRestriction (at least one) must name the SP entity
    ID. The assertion is read the way python3-saml read it (the one its signature covers)."""
    reason = _endpoint_error(
        response.document.get("Destination"), "response's Destination", acs_url
    )
    if reason:
        return reason
    restrictions = response._query_assertion("/saml:Conditions/saml:AudienceRestriction")
    if not restrictions:
        return "the assertion has no Audience; it must name this organization's SP entity ID"
    for restriction in restrictions:
        audiences = [
            (OneLogin_Saml2_XML.element_text(node) or "").strip()
            for node in restriction.findall("saml:Audience", namespaces=_NS)
        ]
        if entity_id not in audiences:
            return f"the assertion's audience is not this organization's SP entity ID {entity_id}"
    confirmations = [
        node
        for node in response._query_assertion("/saml:Subject/saml:SubjectConfirmation")
        if node.get("Method") in (None, _BEARER)
    ]
    if not confirmations:
        return "the assertion has no bearer SubjectConfirmation"
    for node in confirmations:
        data = node.find("saml:SubjectConfirmationData", namespaces=_NS)
        recipient = data.get("Recipient") if data is not None else None
        reason = _endpoint_error(recipient, "SubjectConfirmation Recipient", acs_url)
        if reason:
            return reason
    return ""


@method_decorator(csrf_exempt, name="dispatch")  # the IdP posts here (HTTP-POST binding)
@method_decorator(login_not_required, name="dispatch")
class AuditedSLSView(SLSView):
    """Single logout sent by the IdP, replacing allauth's `saml_sls` view (same URL and name).

    Validated under strict_config like sign-ins (every certificate of a rotation is accepted),
    and a logout message must always be signed, its Destination exactly this SLS address. A
    valid request ends the session only when this organization's IdP opened it (a SAML
    sign-in through this organization) for the NameID it names and, when it lists session
    indexes, for one of them; any other session is left alone. The answer to the IdP is the
    same either way, so it never learns whose session the browser held. The ended session is
    audited as `auth.logout` with `"via": "sso"`; a refused or ignored request as
    `sso.logout_rejected`, naming the user only when this organization's IdP opened the session.
    """

    def dispatch(self, request: HttpRequest, organization_slug: str) -> HttpResponse:

        provider = self.get_provider(organization_slug)
        organization = organization_for_app(provider.app)
        if organization is None:
            return HttpResponse("Unknown identity provider.", status=404)
        request_data = saml_request_data(request)
        config = strict_config(request, provider.app)
        config["security"]["wantMessagesSigned"] = True  # an <img> must not end sessions
        auth = saml_auth(request_data, config)
        account_adapter = get_account_adapter(request)
        user = request.user if request.user.is_authenticated else None
        # Only a member whose session this organization's IdP opened is named in its log.
        own_user = user if saml_session_of(request.session, organization) else None

        redirect_to = None
        reason = ""
        try:
            redirect_to = auth.process_slo(keep_local_session=True)  # ended below, if bound
        except (binascii.Error, etree.LxmlError, ValueError):
            reason = "the logout message is not well-formed"
        except (OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError) as exc:
            reason = str(exc)
        if not reason and auth.get_errors():
            reason = _logout_error(auth, request_data)
        saml_request = request_data.get("get_data", {}).get("SAMLRequest")
        logout_request = None
        if not reason and saml_request:
            logout_request = OneLogin_Saml2_Logout_Request(auth.get_settings(), saml_request)
            sls_url = auth.get_settings().get_sp_data()["singleLogoutService"]["url"]
            destination = OneLogin_Saml2_XML.to_etree(logout_request.get_xml()).get("Destination")
            reason = _endpoint_error(destination, "logout request's Destination", sls_url)
            reason = reason.replace("ACS URL", "single logout URL")
        if reason:
            logger.warning("SAML logout refused for %s: %s", organization.slug, reason)
            with transaction.atomic():
                record_logout_rejection(organization, reason, own_user)
            return HttpResponse(
                f"Single logout refused: {reason}", content_type="text/plain", status=400
            )
        if logout_request is not None and user is not None:
            xml = logout_request.get_xml()
            mismatch = saml_logout_mismatch(
                request.session,
                organization,
                name_id=OneLogin_Saml2_Logout_Request.get_nameid(xml),
                session_indexes=OneLogin_Saml2_Logout_Request.get_session_indexes(xml),
            )
            if mismatch:
                with transaction.atomic():
                    record_logout_rejection(organization, mismatch, own_user)
            else:
                request.logout_via = "sso"  # read by accounts.signals.on_logout
                account_adapter.logout(request)
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

    slug = (request.GET.get("organization") or "").strip().lower()[:64]
    organization = Organization.objects.filter(slug=slug).first() if slug else None
    saml = organization is not None and saml_app(organization) is not None
    openid = organization is not None and oidc.configuration(organization) is not None
    if not (saml or openid):
        messages.error(request, "That organization has no single sign-on; check its short name.")
        return redirect("account_login")
    saml_url = reverse("saml_login", kwargs={"organization_slug": organization.slug})
    oidc_url = reverse(
        "openid_connect_login", kwargs={"provider_id": oidc.provider_id(organization)}
    )
    if saml and openid:
        context = {"sso_organization": organization, "saml_url": saml_url, "oidc_url": oidc_url}
        return render(request, "accounts/sso_choose.html", context)
    return redirect(saml_url if saml else oidc_url)
