"""A test SAML identity provider: its own RSA key and self-signed certificate, and responses
signed with xmlsec (the library python3-saml verifies with), built the way IdPs build them.

The round trip against a real IdP implementation is tests/pysaml2_idp.py (pysaml2). This one
stays for the refusals: every response is written out explicitly, so each test can break
exactly one property (audience, recipient, destination, times, signature, wrapping); OMIT
leaves an audience, recipient or destination out, and several audiences are separated by spaces.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import uuid
import zlib
from urllib.parse import parse_qs, quote_plus, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

HOST = "portal.example.com"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
SURNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"


# Pass as audience, recipient or destination to leave that element or attribute out.
OMIT = "<omit>"


def _instant(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sp_urls(org_slug: str) -> dict[str, str]:
    base = f"https://{HOST}/accounts/saml/{org_slug}"
    return {
        "entity_id": f"{base}/metadata/",
        "acs": f"{base}/acs/",
        "sls": f"{base}/sls/",
        "login": f"{base}/login/",
    }


class TestIdP:
    __test__ = False  # not a pytest class

    def __init__(self, name: str = "idp") -> None:
        self.entity_id = f"https://{name}.example.net/saml/metadata"
        self.sso_url = f"https://{name}.example.net/saml/sso"
        self.slo_url = f"https://{name}.example.net/saml/slo"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} <signing>")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(key, hashes.SHA256())
        )
        self.key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()

    def metadata(self) -> str:
        body = "".join(self.cert_pem.strip().splitlines()[1:-1])
        return f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{self.entity_id}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{self.slo_url}"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{self.sso_url}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""  # noqa: E501

    def assertion(
        self,
        *,
        org_slug: str,
        in_response_to: str,
        name_id: str,
        attributes: dict[str, list[str]],
        audience: str | None = None,
        recipient: str | None = None,
        not_before: dt.datetime | None = None,
        not_on_or_after: dt.datetime | None = None,
        assertion_id: str | None = None,
        sign: bool = True,
    ) -> str:
        sp = sp_urls(org_slug)
        now = dt.datetime.now(dt.UTC)
        not_before = not_before or now - dt.timedelta(minutes=1)
        not_on_or_after = not_on_or_after or now + dt.timedelta(minutes=5)
        values = "".join(
            f'<saml:Attribute Name="{name}" '
            'NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">'
            + "".join(
                f'<saml:AttributeValue xsi:type="xs:string">{_text(v)}</saml:AttributeValue>'
                for v in vals
            )
            + "</saml:Attribute>"
            for name, vals in attributes.items()
        )
        recipient = recipient or sp["acs"]
        recipient_attribute = "" if recipient == OMIT else f' Recipient="{recipient}"'
        audience = audience or sp["entity_id"]
        restriction = (
            ""
            if audience == OMIT
            else "<saml:AudienceRestriction>"
            + "".join(f"<saml:Audience>{a}</saml:Audience>" for a in audience.split(" "))
            + "</saml:AudienceRestriction>"
        )
        xml = f"""<saml:Assertion xmlns:saml="{SAML}" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="{assertion_id or "_a" + uuid.uuid4().hex}" Version="2.0" IssueInstant="{_instant(now)}"><saml:Issuer>{self.entity_id}</saml:Issuer><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{_text(name_id)}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{_instant(not_on_or_after)}"{recipient_attribute} InResponseTo="{in_response_to}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{_instant(not_before)}" NotOnOrAfter="{_instant(not_on_or_after)}">{restriction}</saml:Conditions><saml:AuthnStatement AuthnInstant="{_instant(now)}" SessionIndex="_s{uuid.uuid4().hex}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement>{values}</saml:AttributeStatement></saml:Assertion>"""  # noqa: E501
        return self.sign(xml) if sign else xml

    def sign(self, xml: str) -> str:
        signed = OneLogin_Saml2_Utils.add_sign(xml, self.key_pem, self.cert_pem)
        return signed.decode() if isinstance(signed, bytes) else signed

    def sign_redirect(self, saml_request: str) -> dict[str, str]:
        """HTTP-Redirect binding parameters for a deflated, base64 SAMLRequest, signed with
        RSA-SHA256 over the query string as SAML bindings §3.4.4.1 defines it."""

        sig_alg = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        signed = f"SAMLRequest={quote_plus(saml_request)}&SigAlg={quote_plus(sig_alg)}"
        key = serialization.load_pem_private_key(self.key_pem.encode(), password=None)
        signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return {
            "SAMLRequest": saml_request,
            "SigAlg": sig_alg,
            "Signature": base64.b64encode(signature).decode(),
        }

    def response(
        self,
        assertion: str,
        *,
        org_slug: str,
        in_response_to: str,
        destination: str | None = None,
        sign: bool = False,
        extensions: str = "",
    ) -> str:
        now = dt.datetime.now(dt.UTC)
        destination = destination or sp_urls(org_slug)["acs"]
        destination_attribute = "" if destination == OMIT else f' Destination="{destination}"'
        if extensions:
            extensions = f"<samlp:Extensions>{_strip_declaration(extensions)}</samlp:Extensions>"
        xml = f"""<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_r{uuid.uuid4().hex}" Version="2.0" IssueInstant="{_instant(now)}"{destination_attribute} InResponseTo="{in_response_to}"><saml:Issuer>{self.entity_id}</saml:Issuer>{extensions}<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>{_strip_declaration(assertion)}</samlp:Response>"""  # noqa: E501
        return self.sign(xml) if sign else xml


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _strip_declaration(xml: str) -> str:
    return xml.split("?>", 1)[1] if xml.startswith("<?xml") else xml


def encode(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def request_id_from_redirect(location: str) -> str:
    """The ID of the AuthnRequest the SP sent (HTTP-Redirect binding: deflate + base64)."""
    saml_request = parse_qs(urlsplit(location).query)["SAMLRequest"][0]
    xml = zlib.decompress(base64.b64decode(saml_request), -15)
    return etree.fromstring(xml).get("ID")


@functools.cache
def shared_idp() -> TestIdP:
    """One IdP for suites that only need a valid certificate (key generation takes time)."""
    return TestIdP("shared-idp")
