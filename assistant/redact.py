"""Secrets out of text before it reaches a provider, the database or the audit log.

What a member types, what the grounding and the tools put into a prompt (tag values are
anyone's text: a `db_password` tag is exactly what the policies flag) and what a model answers
are all passed through redact(): known credential shapes are replaced by [REDACTED:<what>],
and the value of any `key=value`, `key: value` or JSON pair whose key names a secret.

Structured values (a tool call's arguments, citations) go through redact_value(), which walks
them and redacts each string: never redact a value's JSON text, whose quotes the `key=value`
pattern can swallow (`{"tag": "db_password=x"}` would no longer parse).
"""

from __future__ import annotations

import re
from typing import Any

# The words that name secrets (not a secret).
_SECRET_KEY_WORDS = r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|credential|authorization)"  # noqa: E501, S105
_PRIVATE_KEY = r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("private key", re.compile(_PRIVATE_KEY, re.S)),
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b")),
    ("API key", re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b")),
    ("bearer token", re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    # "aws_secret_access_key = ...", "db_password: hunter2", '"api_key": "..."'. The key starts
    # where a word does: tried at every character instead, the pattern was 4x slower and
    # matched nothing more (the leftmost match always starts at the word's first character).
    (
        "secret",
        re.compile(
            r"(?<![\w.-])(?P<key>[\"']?[\w.-]*" + _SECRET_KEY_WORDS + r"[\w.-]*[\"']?\s*[:=]\s*)"
            r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s,;}\]]+)",
            re.I,
        ),
    ),
]  # fmt: skip


def redact(text: str) -> str:
    """`text` with every secret replaced by a marker naming what it was."""
    if not text:
        return text
    for what, pattern in _PATTERNS:
        if what == "secret":
            text = pattern.sub(_keep_key, text)
        else:
            text = pattern.sub(f"[REDACTED:{what}]", text)
    return text


def _keep_key(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.startswith("[REDACTED"):
        return match.group(0)
    quote = value[0] if value[:1] in "\"'" else ""
    return f"{match.group('key')}{quote}[REDACTED:secret]{quote}"


SECRET_MARKER = "[REDACTED:secret]"  # noqa: S105 - the marker, not a secret


def redact_value(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings, numbers) with every string redacted, and the
    whole value of a key that names a secret replaced by the marker. Keys are redacted too."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and names_a_secret(key) and _has_content(item):
                out[redact(key)] = SECRET_MARKER
            else:
                out[redact(key) if isinstance(key, str) else key] = redact_value(item)
        return out
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value


def _has_content(value: Any) -> bool:
    return value is not None and not isinstance(value, bool) and value != ""


def names_a_secret(key: str) -> bool:
    """Whether a tag or setting key names a secret (its value is never shown to a model)."""
    return re.search(_SECRET_KEY_WORDS, key, re.I) is not None
