"""A real SAML identity provider for the sign-in tests: a pysaml2 `Server` with its own key,
certificate and metadata, which reads TagSense's SP metadata, parses the AuthnRequest TagSense
sends, and answers with a response it builds and signs itself (through the xmlsec1 program,
installed by scripts/services.sh).

tests/saml_idp.py stays for the negative tests that need to break one property of a response
by hand (wrapping, audience, times); this one proves TagSense interoperates with an IdP
implementation it did not write.
"""

from __future__ import annotations

import base64
import shutil
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from tests.saml_idp import TestIdP

PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def xmlsec_binary() -> str:
    """The xmlsec1 program pysaml2 signs with; scripts/services.sh installs it."""
    path = shutil.which("xmlsec1")
    if path is None:
        raise RuntimeError("xmlsec1 is missing: run scripts/services.sh (Debian package xmlsec1)")
    return path


class PySAML2IdP:
    """One pysaml2 IdP. `name` makes its entity ID and endpoints; `directory` holds its key."""

    def __init__(self, name: str, directory: Path) -> None:
        keys = TestIdP(name)  # an RSA key and a self-signed certificate, nothing more
        self.cert_pem = keys.cert_pem
        self.key_file = directory / f"{name}.key"
        self.cert_file = directory / f"{name}.crt"
        self.key_file.write_text(keys.key_pem)
        self.cert_file.write_text(keys.cert_pem)
        self.entity_id = f"https://{name}.example.org/idp/metadata"
        self.sso_url = f"https://{name}.example.org/idp/sso/redirect"
        self.slo_url = f"https://{name}.example.org/idp/slo/redirect"
        self.sp_metadata: list[str] = []
        self._server: Server | None = None

    def trust_sp(self, sp_metadata_xml: str) -> None:
        """Know an SP (its entity ID and ACS) from the metadata TagSense publishes."""
        self.sp_metadata.append(sp_metadata_xml)
        self._server = None

    def config(self) -> IdPConfig:
        config = IdPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "key_file": str(self.key_file),
                "cert_file": str(self.cert_file),
                "xmlsec_binary": xmlsec_binary(),
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)],
                            "single_logout_service": [(self.slo_url, BINDING_HTTP_REDIRECT)],
                        },
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                        "want_authn_requests_signed": False,
                        "policy": {
                            "default": {
                                "lifetime": {"minutes": 5},
                                "attribute_restrictions": None,
                                "name_form": NAME_FORMAT_URI,
                            }
                        },
                    }
                },
                "metadata": {"inline": list(self.sp_metadata)},
            }
        )
        return config

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = Server(config=self.config())
        return self._server

    def metadata(self) -> str:

        return create_metadata_string(None, config=self.config(), valid=1).decode()

    def respond(
        self, redirect_location: str, *, email: str, attributes: dict[str, list[str]]
    ) -> tuple[str, str]:
        """Answer the AuthnRequest in an HTTP-Redirect URL: (ACS URL, base64 SAMLResponse).

        The request is parsed and checked by pysaml2 (issuer known from the SP metadata,
        destination = this IdP); the response is addressed to the ACS the SP's metadata names,
        and its assertion is signed with RSA-SHA256.
        """
        query = parse_qs(urlsplit(redirect_location).query)
        request = self.server.parse_authn_request(
            query["SAMLRequest"][0], BINDING_HTTP_REDIRECT
        ).message
        args = self.server.response_args(request, [BINDING_HTTP_POST])
        response = self.server.create_authn_response(
            identity=attributes,
            userid=email,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            authn={"class_ref": PASSWORD_PROTECTED, "authn_auth": self.entity_id},
            sign_assertion=True,
            sign_response=False,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
            **{k: args[k] for k in ("in_response_to", "destination", "sp_entity_id")},
            name_id_policy=args.get("name_id_policy"),
        )
        return args["destination"], base64.b64encode(str(response).encode()).decode()


def authn_request_xml(redirect_location: str) -> str:
    saml_request = parse_qs(urlsplit(redirect_location).query)["SAMLRequest"][0]
    return zlib.decompress(base64.b64decode(saml_request), -15).decode()
