"""Keys and caps for refusals: whose sign-in attempts count together, which client addresses
are one source, and how often a repeated refusal is audited.

- `login_key`: the account a sign-in attempt is for, whatever its spelling (the lock-out).
- `source_network`: the client address, IPv6 by its /64 (one host's share: an attacker rotates
  addresses within it for free).
- `claim`: at most one audit event per key and interval (bearer-token refusals, permission
  denials, failed and locked sign-ins), with an atomic cache add. The cache is the shared one
  (CACHE_URL); with the local-memory default each process counts on its own.
- `within_cap`: at most `limit` events per interval for one kind of event in all (refusals
  that name no known account, so rotating names cannot flood the global audit chain).
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from typing import Any

from django.core.cache import cache

from audit.models import normalise_ip

INTERVAL = 60  # seconds
IPV6_SOURCE_PREFIX = 64


def login_key(credentials: dict[str, Any]) -> str:
    """The account a sign-in attempt names: the e-mail address stripped and lower-cased, and
    nothing else (not the host or port the form was posted to)."""
    return str(credentials.get("email") or credentials.get("username") or "").strip().lower()


def source_network(ip: str | None) -> str:
    """One spelling per client source: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64."""
    address = normalise_ip(ip)
    if not address:
        return "-"
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_SOURCE_PREFIX}", strict=False))
    return address


def claim(*parts: object, interval: int = INTERVAL) -> bool:
    """True for the first caller per `parts` and interval, False for the others."""

    digest = hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()
    return bool(cache.add(f"tagsense:claim:{digest}", 1, timeout=interval))


def within_cap(name: str, limit: int, *, interval: int = INTERVAL) -> bool:
    """Count one more event of `name` in the current interval; False once past `limit`."""

    window = f"tagsense:cap:{name}:{int(time.time()) // interval}"
    cache.add(window, 0, timeout=interval * 2)
    try:
        return cache.incr(window) <= limit
    except ValueError:  # the window expired between add and incr
        return True
