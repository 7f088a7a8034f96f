"""SDK exceptions as ProviderError kinds: the same mapping for the openai and anthropic SDKs
(both are generated from one client library: APITimeoutError, APIConnectionError,
APIStatusError with status_code, and a status error raised for an error event inside a
stream, which carries the event's body)."""

from __future__ import annotations

from typing import Any

from .base import ProviderError

# Error types in a stream's error event (Anthropic's `error.type`, OpenAI's `error.type` or
# `code`) that mean the provider, not the request, failed.
_STREAM_ERROR_KINDS = {
    "overloaded_error": "server",
    "api_error": "server",
    "server_error": "server",
    "internal_server_error": "server",
    "rate_limit_error": "rate_limit",
    "rate_limit_exceeded": "rate_limit",
    "authentication_error": "auth",
    "permission_error": "auth",
    "invalid_api_key": "auth",
    "timeout_error": "timeout",
}


def _body_error_type(body: Any) -> str | None:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return error.get("type") or error.get("code")
    return None


def from_sdk(exc: BaseException) -> bool:
    """Whether the exception is the SDK's or its HTTP transport's (a provider or network
    failure), not a programming error of ours, which must surface as itself."""
    module = type(exc).__module__.split(".")[0]
    return module in {"openai", "anthropic", "httpx", "httpx2", "httpcore", "httpcore2"} or (
        isinstance(exc, OSError)
    )


def as_provider_error(exc: BaseException, provider: str) -> ProviderError:
    """The ProviderError for an exception raised by an SDK call or while reading its stream.
    The message never includes the request (it may hold a key in a header). Anything else is
    re-raised as it is."""
    if not from_sdk(exc):
        raise exc
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    if "Timeout" in name:
        return ProviderError("timeout", f"{provider}: timed out")
    kind = _STREAM_ERROR_KINDS.get(_body_error_type(getattr(exc, "body", None)) or "")
    if kind is None and isinstance(status, int) and status >= 400:
        if status == 429:
            kind = "rate_limit"
        elif status in (401, 403):
            kind = "auth"
        elif status >= 500:
            kind = "server"
        elif status == 408:
            kind = "timeout"
        else:
            kind = "bad_request"
    if kind is None:
        # A dropped connection, a reset mid-stream, a malformed event: the provider failed.
        kind = "connection" if "Status" not in name else "server"
    return ProviderError(kind, f"{provider}: {kind} ({name}{f' {status}' if status else ''})",
                         status=status if isinstance(status, int) else None)  # fmt: skip
