"""Every URL an organization configures that TagSense connects to (assistant provider base
URLs, SAML metadata URLs, OpenID issuers) is refused when it reaches the instance-metadata
service or another refused range, in any spelling, at save time; and a host name that
resolves there only later (DNS rebinding) is refused when the portal connects."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
import requests
import urllib3.util.connection

from accounts import oidc
from accounts.adapters import SocialAccountAdapter
from accounts.services import ServiceError
from accounts.sso.metadata import fetch_metadata
from assistant.backends.base import Message, Request
from assistant.backends.errors import ProviderError
from assistant.backends.openai_chat import OpenAIChatBackend
from assistant.models import Provider
from tagsense import outbound
from tagsense.tenancy.db import tenant_scope
from tests.assistant.llm_servers import OpenAIServer, Reply
from tests.conftest import client_for

METADATA_NAME = "metadata.rebind.test"  # the mocked resolver answers 169.254.169.254
SPELLINGS = [
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "169.254.43518",
    "0251.0376.0251.0376",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "[64:ff9b::a9fe:a9fe]",
    "[fe80::1]",
    "[fd00:ec2::254]",
    "0.0.0.0",  # noqa: S104 - an address refused, not bound
    "224.0.0.251",
    METADATA_NAME,
]

_real_getaddrinfo = socket.getaddrinfo


@pytest.fixture(autouse=True)
def resolver(monkeypatch):
    """Names under .rebind.test resolve as `answers` says; every other name as usual."""
    answers = {METADATA_NAME: "169.254.169.254"}

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host in answers:
            return _real_getaddrinfo(answers[host], port, *args, **kwargs)
        return _real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.mark.parametrize("host", SPELLINGS)
def test_every_spelling_is_refused_by_both_policies(host):
    for policy in (outbound.PUBLIC, outbound.PRIVATE_ALLOWED):
        with pytest.raises(outbound.OutboundRefused):
            outbound.check_url(f"http://{host}/v1", policy)


def test_loopback_and_private_only_where_allowed():
    for host in ("127.0.0.1", "10.1.2.3", "[::1]", "100.64.0.1"):
        outbound.check_url(f"http://{host}/", outbound.PRIVATE_ALLOWED)
        with pytest.raises(outbound.OutboundRefused):
            outbound.check_url(f"https://{host}/", outbound.PUBLIC)


@pytest.mark.django_db
@pytest.mark.parametrize("host", SPELLINGS)
def test_an_assistant_provider_cannot_be_created_or_moved_there(org, admin, host):
    client = client_for(admin)
    form = {"action": "provider", "name": "vllm", "kind": "openai_compatible", "model": "m",
            "base_url": "http://127.0.0.1:8000/v1", "position": "0", "enabled": "on",
            "timeout_seconds": "5"}  # fmt: skip
    url = f"/o/{org.slug}/assistant/settings/"
    created = client.post(url, {**form, "name": "bad", "base_url": f"http://{host}/v1"})
    assert created.status_code == 400 and "Nothing was saved" in created.content.decode()
    assert client.post(url, form).status_code == 302
    with tenant_scope(org):
        provider = Provider.objects.get(name="vllm")
    moved = client.post(url, {**form, "provider": provider.pk, "base_url": f"http://{host}/v1"})
    assert moved.status_code == 400 and "Nothing was saved" in moved.content.decode()
    with tenant_scope(org):
        assert list(Provider.objects.values_list("name", "base_url")) == [
            ("vllm", "http://127.0.0.1:8000/v1")
        ]


@pytest.mark.parametrize("host", SPELLINGS)
def test_saml_metadata_and_openid_issuers_there_are_refused(host):
    with pytest.raises(ServiceError):
        fetch_metadata(f"https://{host}/metadata")
    with pytest.raises(ServiceError):
        oidc.discover(f"https://{host}/issuer")


@pytest.fixture
def llm():
    server = OpenAIServer()
    yield server
    server.stop()


def _ask(backend):
    request = Request(system="s", messages=(Message("user", "hi"),), tools=(), temperature=0,
                      max_tokens=16)  # fmt: skip
    return list(backend.stream(request))


def test_a_name_resolving_to_the_metadata_service_is_refused_at_connect_time(
    llm, resolver, monkeypatch
):
    """Saved while it resolved to the (allowed) local server, then rebound: the SDK client
    connects only to a checked address, so the request never leaves."""
    connected = []
    create_connection = socket.create_connection

    def recording(address, *args, **kwargs):
        connected.append(address[0])
        rebound = resolver["llm.rebind.test"] == "169.254.169.254"
        if rebound and (address[0].startswith("169.254.") or address[0] == "llm.rebind.test"):
            raise OSError("the test does not reach for the metadata service")
        return create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording)
    port = llm.url.rsplit(":", 1)[1].split("/")[0]
    name = "llm.rebind.test"
    resolver[name] = "127.0.0.1"
    base_url = f"http://{name}:{port}/v1"
    assert outbound.check_url(base_url, outbound.PRIVATE_ALLOWED) is None  # saved
    llm.script.append(Reply(words=["hello"]))
    backend = OpenAIChatBackend(name="local", model="m", api_key="k", base_url=base_url)
    assert any("hello" in str(event) for event in _ask(backend))  # pinned to 127.0.0.1: works
    assert len(llm.served) == 1 and connected == ["127.0.0.1"]  # the checked address

    resolver[name] = "169.254.169.254"  # DNS rebinding
    backend = OpenAIChatBackend(name="local", model="m", api_key="k2", base_url=base_url)
    with pytest.raises(ProviderError):
        _ask(backend)
    assert len(llm.served) == 1 and connected == ["127.0.0.1"]  # no connection was tried


# --- OpenID sign-in: allauth's requests session (token, user info, keys) ----------------------


@pytest.fixture
def urllib3_connections(monkeypatch):
    """The addresses urllib3 (requests) opens sockets to; 169.254.* is never really tried."""

    connected: list[str] = []
    real = urllib3.util.connection.create_connection

    def recording(address, *args, **kwargs):
        connected.append(address[0])
        if not address[0].startswith("127."):
            raise OSError("the test reaches no address outside this machine")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", recording)
    return connected


@pytest.fixture
def redirecting_server():
    """A local endpoint that answers every request with a redirect to the metadata service."""

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _sign_in_session(settings, insecure_localhost=True):

    settings.OIDC_ALLOW_INSECURE_LOCALHOST = insecure_localhost
    return SocialAccountAdapter().get_requests_session()


def test_openid_sign_in_follows_no_redirect(settings, redirecting_server, urllib3_connections):
    """A token, user-info or keys endpoint answering 302 to the metadata service: refused."""

    session = _sign_in_session(settings)
    for method in (session.get, session.post):
        with pytest.raises(requests.TooManyRedirects):
            method(f"{redirecting_server}/token")
    assert set(urllib3_connections) == {"127.0.0.1"}


def test_openid_sign_in_connects_only_to_checked_addresses(settings, resolver, urllib3_connections):
    """At sign-in the endpoints' names are resolved and checked again, and the socket goes to
    the checked address: a name rebound to the metadata service, a private address, or plain
    http to another host is refused before any connection."""

    session = _sign_in_session(settings)
    resolver["idp.rebind.test"] = "169.254.169.254"
    resolver["idp.private.test"] = "10.0.0.5"
    for url in (
        "https://idp.rebind.test/token",
        "https://idp.private.test/userinfo",
        f"https://{METADATA_NAME}/jwks",
        "http://idp.private.test/token",
        "https://[::ffff:169.254.169.254]/token",
    ):
        with pytest.raises(requests.ConnectionError):
            session.get(url)
    assert urllib3_connections == []
    resolver["idp.public.test"] = "93.184.216.34"
    with pytest.raises(requests.ConnectionError):  # the test goes no further than the socket
        session.get("https://idp.public.test/jwks")
    assert urllib3_connections == ["93.184.216.34"]  # the address that was checked
    # Plain http on this machine only where the setting allows it (tests, development).
    with pytest.raises(requests.ConnectionError):
        _sign_in_session(settings, insecure_localhost=False).get("http://127.0.0.1:9/token")
