"""Failover across the organization's providers, in their configured order.

A timeout, a 5xx, a 429, an authentication error or a dropped connection moves the request to
the next provider: before the first token (the next one answers from the start) and also
mid-stream (the next one is given the partial answer and continues it; the consumer has already
shown that text and keeps it). An error that is the request's own (a 400) does not fail over.
The events say which provider is answering (Answering) and why one was left (Switched), so
the answer can say which provider answered and the audit log can record the failover.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from .backends.base import Backend, Event, Message, ProviderError, Request, TextDelta


@dataclass(frozen=True)
class Answering:
    """From here on, this provider is answering."""

    provider: str
    model: str


@dataclass(frozen=True)
class Switched:
    """A provider failed (`kind`, after `streamed` characters of the answer): the next one
    takes over."""

    provider: str
    model: str
    kind: str
    streamed: int


@dataclass(frozen=True)
class WithoutTools:
    """The provider refused the request with its tools (a 400: many local models, and vLLM
    without a tool parser, take no tools); it is asked again without them."""

    provider: str


class AllProvidersFailed(ProviderError):
    def __init__(self, failures: list[Switched]) -> None:
        names = ", ".join(f"{f.provider} ({f.kind})" for f in failures) or "none configured"
        super().__init__("exhausted", f"every provider failed: {names}")
        self.failures = failures


def continuation(request: Request, partial: str) -> Request:
    """The request with the partial answer as the assistant's last turn: the next provider
    continues it (a prefill for Anthropic, an explicit request to continue for OpenAI)."""
    if not partial:
        return request
    return replace(request, messages=(*request.messages, Message("assistant", partial)))


def stream(
    backends: Sequence[Backend], request: Request
) -> Iterator[Event | Answering | Switched | WithoutTools]:
    """The first provider's events, or the next one's from where it failed. Raises
    AllProvidersFailed when every provider failed over, and the ProviderError of a request
    error (no failover) as it is: a request that carried tools is first tried once more
    without them."""
    partial, failures = "", []
    for backend in backends:
        attempt = request
        while True:
            events = backend.stream(continuation(attempt, partial))
            yield Answering(backend.name, backend.model)
            started = len(partial)
            try:
                for event in events:
                    if isinstance(event, TextDelta):
                        partial += event.text
                    yield event
                return
            except ProviderError as exc:
                if request.cancel is not None and request.cancel.cancelled:
                    raise ProviderError("cancelled", f"{backend.name}: stopped") from exc
                if exc.kind == "bad_request" and attempt.tools and len(partial) == started:
                    attempt = replace(attempt, tools=())
                    yield WithoutTools(backend.name)
                    continue
                if not exc.fails_over:
                    raise
                switched = Switched(backend.name, backend.model, exc.kind, len(partial))
                failures.append(switched)
                yield switched
                break
            finally:
                events.close()  # type: ignore[attr-defined]
    raise AllProvidersFailed(failures)
