"""The one check of the addresses TagSense connects to when an organization configured the
URL (an assistant provider's base URL, SAML metadata, an OpenID issuer), at save time and
again at connect time.

A host is resolved with the system resolver (getaddrinfo), so every spelling of an address
the connection would use is seen as the address it is: `2852039166`, `0xa9fea9fe`,
`169.254.43518`, `0251.0376.0251.0376` and `[::ffff:169.254.169.254]` are all
169.254.169.254, and a DNS name is checked by what it resolves to. Every address the name
resolves to must pass, and the connection then goes to one of the checked addresses
(`resolve()` then connect to its answer: `pinned_httpx_transport()` for the SDK clients,
accounts.sso.metadata's pinned HTTPS connection for documents), so a second DNS answer (rebinding)
cannot switch it to another one.

Two policies (docs/security.md):
- PUBLIC (SSO metadata, OpenID discovery): globally routable addresses only.
- PRIVATE_ALLOWED (assistant providers: a vLLM or Ollama inside the network is the usual
  case): loopback and private ranges are allowed too.
Both refuse link-local addresses (169.254.0.0/16, the cloud instance-metadata service among
them, and fe80::/10), AWS's IPv6 metadata address fd00:ec2::254, multicast, unspecified
(0.0.0.0/8, ::), broadcast and reserved ranges, and check the IPv4 address inside an
IPv4-mapped, 6to4, Teredo or NAT64 (64:ff9b::/96) IPv6 one.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

PUBLIC = "public"
PRIVATE_ALLOWED = "private-allowed"

_METADATA_V6 = ipaddress.ip_address("fd00:ec2::254")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, VPN overlays: private

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefused(ValueError):
    """The URL's host may not be connected to; `unresolved` when it did not resolve."""

    def __init__(self, message: str, *, unresolved: bool = False) -> None:
        super().__init__(message)
        self.unresolved = unresolved


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: Address, policy: str) -> str | None:
    """Why `address` is refused under `policy`, or None."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        return refusal(inner, policy)
    if address.is_link_local or address == _METADATA_V6:
        return "a link-local address (the cloud instance-metadata service lives there)"
    if address.is_multicast or address.is_unspecified or address in _THIS_NETWORK:
        return "a multicast or unspecified address"
    if isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address(
        "255.255.255.255"
    ):
        return "the broadcast address"
    if address.is_loopback or address.is_private or address in _SHARED:
        if policy == PRIVATE_ALLOWED:
            return None
        return "a loopback or private address; only public addresses are allowed here"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


def resolve(host: str, port: int, policy: str) -> list[str]:
    """Every address `host` resolves to, each checked under `policy` (OutboundRefused names
    the first refused one); connect to one of these, never to `host` again."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise OutboundRefused("does not resolve", unresolved=True) from exc
    addresses: list[str] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        problem = refusal(address, policy)
        if problem:
            raise OutboundRefused(f"points to {address}, {problem}")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise OutboundRefused("does not resolve", unresolved=True)
    return addresses


def check_url(url: str, policy: str, *, allow_unresolved: bool = False) -> None:
    """The save-time check of a configured http(s) URL's host. `allow_unresolved`: a name that
    does not resolve from here passes (it is checked again at connect time)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise OutboundRefused("has a port that is not valid") from exc
    if not parts.hostname:
        raise OutboundRefused("names no host")
    try:
        resolve(parts.hostname, port, policy)
    except OutboundRefused as exc:
        if not (exc.unresolved and allow_unresolved):
            raise


def pinned_httpx_transport(policy: str) -> Any:
    """An httpx transport (the openai and anthropic SDKs' httpx2) whose every connection goes
    to an address resolve() checked, the TLS certificate still verified against the host
    name. No proxy from the environment is used (the proxy's address would be checked, not
    the endpoint's)."""
    # Loaded here, not at the top: httpx2 (the LLM SDKs' client) is only needed once a provider
    # is called, and the web and worker processes should not carry it otherwise.
    import httpcore2  # noqa: PLC0415 - see above
    import httpx2  # noqa: PLC0415 - see above

    class PinnedBackend(httpcore2.SyncBackend):
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
        ) -> httpcore2.NetworkStream:
            try:
                address = resolve(host, port, policy)[0]
            except OutboundRefused as exc:
                raise httpcore2.ConnectError(f"{host} {exc}") from None
            return super().connect_tcp(address, port, timeout, local_address, socket_options)

    transport = httpx2.HTTPTransport()
    transport._pool._network_backend = PinnedBackend()  # httpx2 does not expose the backend
    return transport


def pinned_requests_session(
    policy: str, *, loopback_http: bool = False, timeout: float | None = None
) -> Any:
    """A requests Session (what allauth's OpenID client uses at sign-in) whose every
    connection goes to an address resolve() checked under `policy`, the TLS certificate
    still verified against the host name, and which follows no redirect (a redirect is
    refused as TooManyRedirects). Plain http only to 127.0.0.1/localhost, and only with
    `loopback_http` (tests and development). No proxy from the environment is used."""

    def pinned(host: str, port: int, scheme: str) -> str:
        if scheme == "http":
            if loopback_http and host in ("127.0.0.1", "localhost"):
                return "127.0.0.1"
            raise OutboundRefused("plain http is refused")
        return resolve(host, port, policy)[0]

    def pin(connection: Any, scheme: str) -> None:
        try:
            connection._dns_host = pinned(connection._dns_host, connection.port, scheme)
        except OutboundRefused as exc:  # requests answers it as a ConnectionError
            raise NewConnectionError(connection, f"{connection.host} {exc}") from None

    class PinnedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:  # to the checked address; Host stays the name
            pin(self, "http")
            return super()._new_conn()

    class PinnedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:  # SNI and the certificate check use self.host
            pin(self, "https")
            return super()._new_conn()

    class PinnedHTTPPool(HTTPConnectionPool):
        ConnectionCls = PinnedHTTPConnection

    class PinnedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = PinnedHTTPSConnection

    class PinnedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": PinnedHTTPPool,
                "https": PinnedHTTPSPool,
            }
            self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)

    session = requests.Session()
    session.trust_env = False  # a proxy's address would be checked, not the endpoint's
    session.max_redirects = 0
    adapter = PinnedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if timeout is not None:
        # method-assign: requests has no session-wide timeout; this one session's request
        # method is replaced by one that passes it.
        session.request = functools.partial(session.request, timeout=timeout)  # type: ignore[method-assign]
    return session
