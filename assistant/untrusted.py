"""Text from AWS (tag keys and values, resource names) on its way to a model or a reader.

Anyone who may tag a resource in AWS writes these strings, so they are data, never
instructions: they are shortened, their control characters and line breaks removed, and shown
quoted (`quote`: a JSON string for prompts and tool results; `code`: a Markdown code span for
answers). A tag whose key looks like it holds a secret (a password, a token, a private key) or
that one of the organization's prohibited-key rules names has its value replaced by REDACTED,
as policies.engine.reference never reports the value of a prohibited tag.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

from policies.engine.spec import glob_match
from policies.models import Rule

from .redact import names_a_secret

REDACTED = "[redacted]"
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")


def clean(text: object, limit: int = 60) -> str:
    """`text` on one line without control or bidirectional characters, at most `limit`
    characters (an ellipsis marks a cut)."""
    value = _UNPRINTABLE.sub(" ", str(text)).strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def quote(text: object, limit: int = 60) -> str:
    """clean() as a JSON string literal: plainly a quoted datum in a prompt."""
    return json.dumps(clean(text, limit), ensure_ascii=False)


def code(text: object, limit: int = 60) -> str:
    """clean() as a Markdown code span (no backtick inside can close it early)."""
    return "`" + clean(text, limit).replace("`", "'") + "`"


def is_secret_key(key: str, patterns: Iterable[str] = ()) -> bool:
    """Whether a tag key's value is never shown: a key naming a secret (the words redact()
    knows, whatever the organization's rules), or one the organization's rules prohibit."""
    return names_a_secret(key) or any(glob_match(p, key, ignore_case=True) for p in patterns)


def prohibited_patterns(organization) -> tuple[str, ...]:
    """The keys and aliases of the organization's active prohibited-key rules (globs)."""

    found: list[str] = []
    for rule in Rule.objects.for_org(organization).filter(active=True).order_by("rule_id"):
        if rule.spec.get("check") == "prohibited_key":
            found.extend([rule.spec.get("key", ""), *rule.spec.get("aliases", [])])
    return tuple(p for p in found if p)


def tag_value(key: str, value: object, patterns: Iterable[str] = (), limit: int = 60) -> str:
    """A tag's value as it may be shown: REDACTED for a secret-looking key, else clean()."""
    if is_secret_key(key, patterns):
        return REDACTED
    return clean("" if value is None else value, limit)


def tags(
    values: Mapping[str, object], patterns: Iterable[str] = (), *, most: int = 12, limit: int = 60
) -> dict[str, str]:
    """At most `most` tags (sorted by key), keys and values cleaned, secrets redacted."""
    patterns = tuple(patterns)
    return {
        clean(k, 64): tag_value(k, v, patterns, limit) for k, v in sorted(values.items())[:most]
    }
