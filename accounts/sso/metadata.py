"""What an organization's SAML IdP is, as an admin gives it (docs/sso.md): its settings
(IdPSettings), its signing certificates, its metadata XML parsed, and the metadata read from a
public https address only (fetch_public_https, also used for OpenID discovery documents: no
private addresses, no DNS rebinding, no redirects, bounded size and time)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography import x509
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

from tagsense import outbound

from ..services import ServiceError

DEFAULT_ATTRIBUTES = {
    "email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "first_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    "last_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    "groups": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
}


@dataclass
class IdPSettings:
    entity_id: str
    sso_url: str
    slo_url: str = ""
    certificates: list[str] = field(default_factory=list)
    want_message_signed: bool = False
    email_attribute: str = DEFAULT_ATTRIBUTES["email"]
    first_name_attribute: str = DEFAULT_ATTRIBUTES["first_name"]
    last_name_attribute: str = DEFAULT_ATTRIBUTES["last_name"]
    groups_attribute: str = DEFAULT_ATTRIBUTES["groups"]
    source: str = "manual"  # "manual", "metadata-xml" or the metadata URL


_PEM_ARMOUR = re.compile(r"-----(BEGIN|END) CERTIFICATE-----")


def normalise_certificate(text: str) -> str:
    """The certificate's base64 DER on one line; ServiceError when it is not an X.509 one."""
    body = re.sub(r"\s+", "", _PEM_ARMOUR.sub("", text or ""))
    try:
        der = base64.b64decode(body, validate=True)
        x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise ServiceError("that is not a valid X.509 certificate (PEM or base64)") from exc
    return body


def describe_certificate(body: str) -> dict[str, str]:
    """What an admin needs to recognise a certificate: never the certificate itself."""
    der = base64.b64decode(body)
    cert = x509.load_der_x509_certificate(der)
    return {
        "subject": cert.subject.rfc4514_string()[:200],
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%d"),
        "sha256": hashlib.sha256(der).hexdigest(),
    }


def check_idp_url(url: str, what: str, *, required: bool = True) -> str:
    url = (url or "").strip()
    if not url:
        if required:
            raise ServiceError(f"the {what} is required")
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ServiceError(f"the {what} must be an http(s) URL")
    return url


def settings_from_metadata(xml: str, *, entity_id: str = "") -> IdPSettings:
    """IdP settings from its metadata XML (an upload, or what fetch_metadata returned)."""
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(
            xml,
            entity_id=entity_id or None,
            required_sso_binding=OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT,
        )
    except Exception as exc:  # lxml and the parser raise many kinds; none is the user's fault
        raise ServiceError("the IdP metadata could not be read as SAML metadata XML") from exc
    idp = parsed.get("idp") or {}
    certificates = list((idp.get("x509certMulti") or {}).get("signing") or [])
    if not certificates and idp.get("x509cert"):
        certificates = [idp["x509cert"]]
    if not idp.get("entityId") or not certificates:
        raise ServiceError("the metadata names no IdP entity with a signing certificate")
    return IdPSettings(
        entity_id=idp["entityId"],
        sso_url=(idp.get("singleSignOnService") or {}).get("url", ""),
        slo_url=(idp.get("singleLogoutService") or {}).get("url", ""),
        certificates=certificates,
        source="metadata-xml",
    )


METADATA_MAX_BYTES = 1024 * 1024
METADATA_TIMEOUT = 10  # seconds, for the whole fetch


def _public_address(host: str, port: int, what: str) -> str:
    """One address `host` resolves to, after checking every one of them is public
    (tagsense.outbound, policy PUBLIC)."""

    try:
        return outbound.resolve(host, port, outbound.PUBLIC)[0]
    except outbound.OutboundRefused as exc:
        if exc.unresolved:
            raise ServiceError(f"the {what}'s host name does not resolve") from exc
        raise ServiceError(
            f"the {what} points to a loopback, private, link-local or reserved "
            "address; TagSense reads it only from public addresses"
        ) from exc


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address checked beforehand, so a second DNS answer cannot swap it; the
    certificate is still verified against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def fetch_public_https(
    url: str, *, what: str, max_bytes: int, timeout: float, accept: str
) -> bytes:
    """A document an admin pointed TagSense at (IdP metadata, an OpenID discovery document),
    read from a public https address only: every address the host resolves to is checked and
    the connection goes to a checked one (no DNS rebinding to an internal service); no
    redirects are followed; at most `max_bytes` within `timeout` seconds."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ServiceError(f"the {what} must use https")
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise ServiceError(f"the {what}'s port is not valid") from exc
    address = _public_address(parts.hostname, port, what)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    deadline = time.monotonic() + timeout
    connection = _PinnedHTTPSConnection(parts.hostname, port, address, timeout)
    try:
        connection.request("GET", path, headers={"Accept": accept})
        response = connection.getresponse()
        if response.status != 200:
            raise ServiceError(
                f"the {what} answered HTTP {response.status} (redirects are not "
                "followed: give the final address)"
            )
        body = b""
        while len(body) <= max_bytes:
            if time.monotonic() > deadline:
                raise ServiceError(f"the {what} took too long to download")
            chunk = response.read(64 * 1024)
            if not chunk:
                break
            body += chunk
        if len(body) > max_bytes:
            raise ServiceError(f"the document at the {what} is larger than {max_bytes} bytes")
    except (OSError, http.client.HTTPException) as exc:
        raise ServiceError(f"nothing could be fetched from the {what}") from exc
    finally:
        connection.close()
    return body


def fetch_metadata(url: str) -> str:
    """The IdP metadata at a public https URL, read once when an admin saves the configuration.

    No redirects are followed; at most METADATA_MAX_BYTES within METADATA_TIMEOUT seconds.
    """
    url = check_idp_url(url, "metadata URL")
    body = fetch_public_https(
        url,
        what="metadata URL",
        max_bytes=METADATA_MAX_BYTES,
        timeout=METADATA_TIMEOUT,
        accept="application/samlmetadata+xml, */*",
    )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ServiceError("the IdP metadata is not UTF-8 XML") from exc
