"""The sign-in lock-out counts the account, not how its name or the host was spelled, and
counts an IPv6 client by its /64."""

import pytest
from django.conf import settings
from django.test import Client

from accounts.throttle import IPV6_SOURCE_PREFIX, login_key, source_network

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-in attempts"


def _attempt(email, password, *, ip="198.51.100.7", host="testserver"):
    client = Client()
    response = client.post(
        "/accounts/login/", {"login": email, "password": password}, REMOTE_ADDR=ip, HTTP_HOST=host
    )
    return response


def _signed_in(response):
    return response.status_code == 302 and LOCKED not in response.content.decode()


@pytest.mark.parametrize(
    "hosts",
    [
        ["testserver:8000", "testserver:8001", "testserver:8002", "testserver", "testserver:443"],
        ["testserver"] * 5,
    ],
)
@pytest.mark.parametrize("final_host", ["testserver", "testserver:9999", "TESTSERVER:80"])
def test_the_account_stays_locked_whatever_port_the_host_names(
    org, owner, password, hosts, final_host
):
    for n, host in enumerate(hosts):
        response = _attempt(owner.email, "wrong-password-x", ip=f"198.51.100.{n}", host=host)
        assert LOCKED not in response.content.decode()
    refused = _attempt(owner.email, password, ip="198.51.100.99", host=final_host)
    assert not _signed_in(refused) and LOCKED in refused.content.decode()


@pytest.mark.parametrize(
    "spellings",
    [
        ["OWNER@ACME.EXAMPLE", "Owner@Acme.Example", " owner@acme.example", "owner@acme.example ",
         "\towner@ACME.example"],
    ],
)  # fmt: skip
@pytest.mark.parametrize("final", ["owner@acme.example", "  OWNER@acme.EXAMPLE  "])
def test_the_account_stays_locked_whatever_case_or_spaces_the_address_has(
    org, owner, password, spellings, final
):
    for n, spelling in enumerate(spellings):
        _attempt(spelling, "wrong-password-x", ip=f"198.51.100.{n}")
    refused = _attempt(final, password, ip="198.51.100.99")
    assert LOCKED in refused.content.decode()


def test_an_ipv6_client_is_one_source_across_its_64(org, owner, password, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "3/15m/ip,50/15m/key"}
    for n in range(3):
        _attempt(f"probe{n}@nowhere.example", "guess-guess-1", ip=f"2001:db8:1:2::{n + 1:x}")
    refused = _attempt(owner.email, password, ip="2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert LOCKED in refused.content.decode()
    # The next /64 is another source.
    assert _signed_in(_attempt(owner.email, password, ip="2001:db8:1:3::1"))


def test_ipv4_clients_behind_a_dual_stack_socket_are_not_one_source(org, owner, password, settings):
    """IPv4-mapped addresses are their IPv4 address: two clients are two sources, and one client
    is one source whichever way the socket spells it."""
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "3/15m/ip,50/15m/key"}
    for n in range(3):
        _attempt(f"probe{n}@nowhere.example", "guess-guess-1", ip=f"::ffff:203.0.113.{n % 2}")
    assert _signed_in(_attempt(owner.email, password, ip="::ffff:203.0.113.50"))
    _attempt("probe9@nowhere.example", "guess-guess-1", ip="203.0.113.0")
    assert LOCKED in _attempt(owner.email, password, ip="203.0.113.0").content.decode()


def test_the_portal_and_allauth_group_the_same_ipv6_source():
    assert settings.ALLAUTH_RATE_LIMIT_IPV6_PREFIX == IPV6_SOURCE_PREFIX
    assert source_network("2001:db8:1:2::1") == source_network("2001:db8:1:2:a:b:c:d")
    assert source_network("::ffff:192.0.2.1") == "192.0.2.1"
    assert login_key({"email": "  Ann@Example.COM\t"}) == "ann@example.com"
