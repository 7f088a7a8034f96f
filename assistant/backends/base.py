"""One interface for every language-model backend, streaming first.

A backend turns a Request (system prompt, conversation, tools, model settings) into an iterator
of events: text as it arrives (TextDelta), complete tool calls (ToolCallEvent: the SDKs' deltas
assembled), token usage (Usage) and the end (Done). A failure is a ProviderError whose `kind`
says whether the next provider should take over (failover: assistant.failover).

Closing the iterator (generator.close(), also when the consumer is garbage-collected) closes the
upstream HTTP response: the stop button really cancels the request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: a name, what it does, its JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]  # parsed; {"_invalid": text} when the model sent bad JSON


@dataclass(frozen=True)
class Message:
    """One turn. An assistant turn may carry tool calls; a tool turn answers one of them."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class Request:
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"  # or "none": the tools are declared, but none may be called
    temperature: float = 0.2
    max_tokens: int = 1024
    # Structured grounding for backends that read data rather than text (the offline analyst).
    facts: dict[str, Any] = field(default_factory=dict, compare=False)
    mode: str = "chat"
    cancel: Cancel | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    call: ToolCall


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Done:
    stop_reason: str  # "end", "tool_use", "max_tokens" or the provider's own word


Event = TextDelta | ToolCallEvent | Usage | Done

# What a failure was. The first four move the request to the next provider.
FAILOVER_KINDS = frozenset({"timeout", "server", "rate_limit", "auth", "connection"})


class Cancel:
    """A stop for a request in flight, from another thread: the backends hand it the SDK
    stream they read (watch), and cancel() closes it, so a read blocked on a provider that has
    gone silent ends at once instead of at the provider's timeout. What the backend then
    raises is a ProviderError of kind "cancelled", which never fails over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[Any] = []
        self.cancelled = False

    def watch(self, stream: Any) -> None:
        with self._lock:
            self._open.append(stream)
            cancelled = self.cancelled
        if cancelled:
            stream.close()

    def forget(self, stream: Any) -> None:
        """The backend is done reading `stream` (its connection may go back to the pool and
        serve another request): a later cancel() must not touch it."""
        with self._lock:
            if stream in self._open:
                self._open.remove(stream)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            streams, self._open = self._open, []
        for stream in streams:
            with contextlib.suppress(Exception):  # what may be broken already
                _interrupt(stream)


def _interrupt(stream: Any) -> None:
    """Wake a thread blocked reading an SDK stream: shut its socket down (closing the stream
    from another thread leaves a blocked read waiting until its timeout). The reading thread
    then fails its read and closes the stream itself."""
    response = getattr(stream, "response", None)
    network = (getattr(response, "extensions", None) or {}).get("network_stream")
    sock = network.get_extra_info("socket") if network is not None else None
    if sock is not None:
        # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would drop its TLS
        # state from this thread while the reader is inside it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    else:
        stream.close()


class ProviderError(Exception):
    """A provider failed: `kind` is timeout, server (5xx), rate_limit (429), auth (401/403),
    connection, or bad_request (the request itself is wrong: no failover)."""

    def __init__(self, kind: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status

    @property
    def fails_over(self) -> bool:
        return self.kind in FAILOVER_KINDS


class Backend(Protocol):
    """A configured provider: `name` is how answers and the audit log name it."""

    name: str
    model: str

    def stream(self, request: Request) -> Iterator[Event]: ...


def parse_arguments(text: str) -> dict[str, Any]:
    """A tool call's JSON arguments; {"_invalid": text} when they are not a JSON object."""

    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"_invalid": text}
    return value if isinstance(value, dict) else {"_invalid": text}
