"""A question and its streamed answer.

ask() records the question (redacted) and a pending answer in one transaction with its
assistant.prompt event. prepare() claims the pending answer and builds its request: the
grounding for what the member may see and the mode's system prompt. answer() then streams: it
answers from the cache when the same question was asked over the same context snapshot, else
runs the providers with failover and a bounded tool loop (each tool executed with the member's
permissions and audited with its arguments), and saves the answer with its assistant.answer
event (provider, model, tokens, latency, failovers, cached) — also when the member stops it
(status "stopped", the partial text kept).

answer() holds no database transaction while a provider streams: each read or write is its
own short transaction in the member's tenant scope.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

import audit
from tagsense.tenancy.db import tenant_scope

from . import audit_events, failover, services, tools
from .backends.base import (
    Cancel,
    Message,
    ProviderError,
    Request,
    TextDelta,
    ToolCallEvent,
    Usage,
)
from .backends.offline import OfflineAnalyst
from .grounding import cached_context, focus, sources
from .models import ChatMessage, Conversation
from .modes import MODES, system_prompt
from .redact import redact, redact_value

if TYPE_CHECKING:
    from accounts.models import Membership
    from tagsense.tenancy.context import Actor

logger = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 4  # model turns that may call tools; the next one must answer
HISTORY_TURNS = 10  # earlier messages of the conversation sent with a question
CACHE_SECONDS = 3600
CONTEXT_TOKENS = 3000
CHARS_PER_TOKEN = 4  # an estimate, where a provider reports no usage


@dataclass(frozen=True)
class Notice:
    """A line for the browser (and, through the stream, nowhere else): redacted here, once,
    whatever it quotes (a provider's error, a backend's name, an admin's setting)."""

    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", redact(self.text))


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Answering:
    provider: str
    model: str


@dataclass(frozen=True)
class ToolUse:
    name: str
    arguments: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class Finished:
    message: ChatMessage


def ask(
    membership: Membership, question: str, *, mode: str = "chat", conversation_id: int | None = None
) -> tuple[ChatMessage, ChatMessage]:
    """Record the question and a pending answer (one transaction, one event). A conversation
    id that is not this member's own in this organization is a Conversation.DoesNotExist."""

    mode = mode if mode in MODES else "chat"
    text = redact(question.strip())[:4000]
    with transaction.atomic():
        conversations = Conversation.objects.for_org(membership.organization).filter(
            user_id=membership.user_id
        )
        if conversation_id is not None:
            conversation = conversations.get(pk=conversation_id)
            conversation.mode = mode
            conversation.save(update_fields=["mode", "updated_at"])
        else:
            conversation = Conversation.objects.create(
                organization=membership.organization,
                user_id=membership.user_id,
                mode=mode,
                title=text[:120],
            )
        asked = ChatMessage.objects.create(
            organization=membership.organization,
            conversation=conversation,
            role=ChatMessage.USER,
            mode=mode,
            content=text,
        )
        pending = ChatMessage.objects.create(
            organization=membership.organization,
            conversation=conversation,
            role=ChatMessage.ASSISTANT,
            mode=mode,
            status=ChatMessage.PENDING,
        )
        audit.record(
            audit_events.PROMPT,
            target=conversation,
            data={"question": text, "mode": mode, "message": asked.pk},
        )
    return asked, pending


def _history(organization, pending: ChatMessage) -> tuple[Message, ...]:
    earlier = (
        ChatMessage.objects.for_org(organization)
        .filter(conversation=pending.conversation, pk__lt=pending.pk)
        .exclude(status__in=[ChatMessage.PENDING, ChatMessage.FAILED])
        .order_by("-pk")[:HISTORY_TURNS]
    )
    return tuple(Message(m.role, m.content) for m in reversed(list(earlier)) if m.content)


def _cache_key(membership: Membership, snapshot: str, mode: str, messages, backends) -> str:
    digest = hashlib.sha256(
        json.dumps(
            [
                membership.organization_id,
                snapshot,
                mode,
                [(m.role, " ".join(m.content.lower().split())) for m in messages],
                [(b.name, b.model) for b in backends],
            ]
        ).encode()
    ).hexdigest()
    return f"assistant:answer:{digest}"


class _Stopped(Exception):
    pass


@dataclass
class Prepared:
    """A claimed pending answer and everything its stream needs (assistant.chat.prepare)."""

    pending: ChatMessage
    request: Request
    backends: list
    notices: list[str]
    snapshot: str
    started: float
    budget_left: int | None = None  # tokens left in the month's budget; None: no budget


def prepare(membership: Membership, pending_id: int) -> Prepared:
    """Claim the pending answer `pending_id` (this member's own; another's, or one already
    streaming, is a ChatMessage.DoesNotExist) and build its request: the grounding, the mode's
    system prompt, the conversation so far, the providers. Runs in the caller's tenant scope
    (the stream view's own transaction, before the stream starts)."""

    started = time.monotonic()
    organization = membership.organization
    claimed = ChatMessage.objects.filter(
        pk=pending_id,
        organization=organization,
        role=ChatMessage.ASSISTANT,
        status=ChatMessage.PENDING,
        conversation__user_id=membership.user_id,
    ).update(status=ChatMessage.STREAMING)
    if not claimed:
        raise ChatMessage.DoesNotExist(pending_id)
    pending = ChatMessage.objects.select_related("conversation").get(pk=pending_id)
    grounding = cached_context(membership, budget_tokens=CONTEXT_TOKENS)
    settings = services.settings_for(organization)
    backends, notices, budget_left = services.backends_for(membership, settings)
    history = _history(organization, pending)
    # A question naming a framework (SOC 2, PCI DSS...) is grounded on that framework alone.
    question = next((m.content for m in reversed(history) if m.role == "user"), "")
    grounding = focus(grounding, question, budget_tokens=CONTEXT_TOKENS)
    request = Request(
        system=redact(system_prompt(pending.mode, grounding, organization)),
        messages=history,
        tools=tools.TOOLS,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        facts=grounding.facts,
        mode=pending.mode,
    )
    return Prepared(pending, request, backends, notices, grounding.snapshot, started, budget_left)


def answer(
    membership: Membership, prepared: Prepared, actor: Actor, should_stop=lambda: False
) -> Iterator[Any]:
    """Stream the prepared answer: Notice, Answering, Token, ToolUse events, then Finished
    with the saved message. `should_stop` (the stop button) is asked by a watcher thread, not
    on every token: when it says so, the request in flight is cancelled, and the stream ends
    at its next event or at once if the provider is silent; the partial answer is saved as
    stopped. Closing the generator (the member went away) does the same, without the Finished
    event."""
    organization = membership.organization
    pending, request, backends = prepared.pending, prepared.request, prepared.backends

    def scope():
        return tenant_scope(organization, membership=membership, actor=actor)

    for notice in prepared.notices:
        yield Notice(notice)

    cancel = Cancel()
    state = _State(started=prepared.started, cancel=cancel)
    key = _cache_key(membership, prepared.snapshot, pending.mode, request.messages, backends)
    watcher = _StopWatcher(should_stop, cancel)
    watcher.start()
    try:
        hit = cache.get(key)
        if hit is not None:
            state.cached = True
            state.provider, state.model = hit["provider"], hit["model"]
            state.citations = hit["citations"]
            yield Answering(state.provider, state.model)
            for word in _chunks(hit["text"]):
                state.first_token = state.first_token or time.monotonic()
                state.text += word
                yield Token(word)
                state.check()
        else:
            yield from _run(membership, scope, backends, replace(request, cancel=cancel),
                            state, prepared.budget_left)  # fmt: skip
            _cite_links(state, request.facts)
            # Not an answer pieced together after a failure: once the provider is back, the
            # same question deserves its answer, not an hour of the fallback's.
            if state.provider and not state.failovers and not state.truncated:
                cache.set(key, {"text": redact(state.text), "provider": state.provider,
                                "model": state.model, "citations": state.citations},
                          CACHE_SECONDS)  # fmt: skip
        state.status = ChatMessage.COMPLETE
    except _Stopped:
        state.status = ChatMessage.STOPPED
    except ProviderError as exc:
        if exc.kind == "cancelled":  # stopped while the provider was silent
            state.status = ChatMessage.STOPPED
        else:
            state.status = ChatMessage.FAILED
            yield Notice(f"No provider could answer: {exc}")
    except Exception:
        state.status = ChatMessage.FAILED
        raise
    finally:
        watcher.done.set()
        # Also on a stop (GeneratorExit): the partial answer is kept, marked stopped.
        with scope():
            saved = _save(pending, state)
    yield Finished(saved)


class _StopWatcher(threading.Thread):
    """Asks `should_stop` every POLL_SECONDS while an answer streams, and cancels the request
    in flight when it says so: a provider that has gone silent is not waited for, and the
    stream is not slowed by a look at the shared cache on every token."""

    POLL_SECONDS = 0.25

    def __init__(self, should_stop, cancel: Cancel) -> None:
        super().__init__(daemon=True, name="assistant-stop-watcher")
        self.should_stop, self.cancel = should_stop, cancel
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.POLL_SECONDS):
            try:
                stop = self.should_stop()
            except Exception:  # noqa: BLE001 - the cache is down: try again at the next poll
                logger.warning("the assistant's stop check failed", exc_info=True)
                continue
            if stop:
                self.cancel.cancel()
                return


@dataclass
class _State:
    started: float
    cancel: Cancel | None = None  # set by the stop watcher
    text: str = ""
    provider: str = ""
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    first_token: float | None = None
    cached: bool = False
    truncated: bool = False  # ended by the budget: never cached
    status: str = ChatMessage.STOPPED
    failovers: list | None = None
    citations: list | None = None
    tool_calls: list | None = None

    def __post_init__(self) -> None:
        self.failovers, self.citations, self.tool_calls = [], [], []

    def estimate(self, request: Request, streamed: str) -> None:
        """Count a provider's tokens that it never reported (see _round)."""
        sent = len(request.system) + sum(len(m.content) for m in request.messages)
        self.tokens_in += sent // CHARS_PER_TOKEN
        self.tokens_out += len(streamed) // CHARS_PER_TOKEN

    def check(self) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            raise _Stopped


def _run(
    membership, scope, backends, request: Request, state: _State, budget_left: int | None = None
) -> Iterator[Any]:
    """Model turns with failover until one answers without calling a tool (at most
    MAX_TOOL_ROUNDS turns may call tools; the next one is told to call none: the tools stay
    declared, as the conversation holds tool calls that providers refuse without them, with
    tool_choice "none"; a call it makes anyway is not run)."""

    for round_number in range(MAX_TOOL_ROUNDS + 1):
        if budget_left is not None and state.tokens_in + state.tokens_out >= budget_left:
            state.truncated = True
            yield Notice("The monthly token budget ran out during this answer: it ends here.")
            return
        if round_number == MAX_TOOL_ROUNDS:
            request = replace(request, tool_choice="none")  # the loop is bounded: now answer
        calls: list = []
        before = len(state.text)
        events = failover.stream(backends, request)
        try:
            yield from _round(events, state, calls, request)
        finally:
            events.close()  # also on a stop: the upstream request ends here
        if not calls or request.tool_choice == "none":
            return
        round_text = state.text[before:]
        results = []
        for call in calls:
            with scope():
                result = tools.execute(membership, call)
                arguments = redact_value(call.arguments)
                error = redact(result.error) if result.error else result.error
                audit.record(
                    audit_events.TOOL_CALL,
                    data={"tool": call.name, "arguments": arguments, "error": error,
                          "provider": state.provider},
                )  # fmt: skip
            state.tool_calls.append({"name": call.name, "arguments": arguments, "error": error})
            for citation in result.citations:
                entry = {"label": redact(citation.label), "url": citation.url}
                if entry not in state.citations:
                    state.citations.append(entry)
            yield ToolUse(call.name, arguments, error)
            results.append(Message("tool", redact(result.content), tool_call_id=call.id))
            state.check()
        if round_text and not round_text.endswith((" ", "\n")):
            state.text += "\n\n"
            yield Token("\n\n")
        request = replace(
            request,
            messages=(*request.messages, Message("assistant", round_text, tool_calls=tuple(calls)),
                      *results),
        )  # fmt: skip


def _round(events, state: _State, calls: list, request: Request) -> Iterator[Any]:
    """One model turn's events (with failover) into the state and the UI's events. A provider
    that reports no usage (it failed mid-way, or the answer was stopped) is counted by estimate:
    four characters a token of what it was sent and what it streamed."""
    attempt: int | None = None  # where the text of the provider answering, not yet counted, began
    try:
        for event in events:
            if isinstance(event, failover.Answering):
                state.provider, state.model = event.provider, event.model
                attempt = len(state.text)
                yield Answering(event.provider, event.model)
            elif isinstance(event, failover.WithoutTools):
                yield Notice(f"{event.provider} refused the tools (400): it answers without them.")
            elif isinstance(event, failover.Switched):
                if attempt is not None and state.text[attempt:]:  # it had begun answering
                    state.estimate(request, state.text[attempt:])
                attempt = None
                state.failovers.append(
                    {"provider": event.provider, "kind": event.kind, "streamed": event.streamed}
                )
                yield Notice(
                    f"{event.provider} failed ({event.kind}); the next provider continues."
                )
            elif isinstance(event, TextDelta):
                state.first_token = state.first_token or time.monotonic()
                state.text += event.text
                yield Token(event.text)
            elif isinstance(event, ToolCallEvent):
                calls.append(event.call)
            elif isinstance(event, Usage):
                attempt = None
                state.tokens_in += event.input_tokens
                state.tokens_out += event.output_tokens
            state.check()
    finally:
        offline = (state.provider, state.model) == (OfflineAnalyst.name, OfflineAnalyst.model)
        if attempt is not None and not offline:  # stopped: it had read the request
            state.estimate(request, state.text[attempt:])


# The target of a Markdown link or <autolink> to a path on this site.
_LINK_TARGET = re.compile(r"\]\(\s*<?(/[^)\s>]*)>?|<(/[^>\s]*)>")


def _cite_links(state: _State, facts: dict[str, Any]) -> None:
    """The grounding's links that the answer uses join the tools' citations, labelled as the
    portal labels them (never with the model's words); a link the grounding did not give is
    not a source."""
    known = sources(facts)
    for match in _LINK_TARGET.finditer(state.text):
        url = match.group(1) or match.group(2)
        if url in known and all(c["url"] != url for c in state.citations):
            state.citations.append({"label": redact(known[url]), "url": url})


def _chunks(text: str) -> Iterator[str]:
    """A cached answer, replayed a few words at a time."""
    words = text.split(" ")
    for index in range(0, len(words), 3):
        part = " ".join(words[index : index + 3])
        yield part + (" " if index + 3 < len(words) else "")


def _save(pending: ChatMessage, state: _State) -> ChatMessage:
    now = time.monotonic()
    pending.content = redact(state.text)
    pending.status = state.status
    pending.provider, pending.model = state.provider, state.model
    pending.tokens_in, pending.tokens_out = state.tokens_in, state.tokens_out
    pending.latency_ms = int((now - state.started) * 1000)
    pending.first_token_ms = (
        int((state.first_token - state.started) * 1000) if state.first_token else None
    )
    pending.cached = state.cached
    pending.failovers, pending.citations = state.failovers, state.citations
    pending.tool_calls = redact_value(state.tool_calls)
    with transaction.atomic():
        pending.save()
        pending.conversation.save(update_fields=["updated_at"])
        audit.record(
            audit_events.ANSWER,
            target=pending.conversation,
            data={
                "message": pending.pk,
                "status": pending.status,
                "provider": pending.provider,
                "model": pending.model,
                "tokens_in": pending.tokens_in,
                "tokens_out": pending.tokens_out,
                "latency_ms": pending.latency_ms,
                "first_token_ms": pending.first_token_ms,
                "failovers": pending.failovers,
                "cached": pending.cached,
                "tool_calls": len(pending.tool_calls),
                "answer": pending.content[:2000],
            },
        )
    return pending


ABANDONED_AFTER_SECONDS = 3600  # far longer than any answer: five turns at a generous timeout each


def close_abandoned(organization, now=None) -> int:
    """Answers that will never finish, closed and audited: a question whose stream was never
    opened (the page closed first), or an answer whose process ended mid-stream. Each becomes
    failed, with its assistant.answer event (status abandoned), so that every question in the
    audit log has its answer event. Runs in the caller's tenant scope."""

    cutoff = (now or timezone.now()) - timedelta(seconds=ABANDONED_AFTER_SECONDS)
    stale = ChatMessage.objects.for_org(organization).filter(
        role=ChatMessage.ASSISTANT,
        status__in=[ChatMessage.PENDING, ChatMessage.STREAMING],
        created_at__lt=cutoff,
    )
    closed = 0
    for message in stale.select_related("conversation"):
        with transaction.atomic():
            was = message.status
            # Only if it is still as read: a stream that claims or saves it meanwhile wins.
            if not ChatMessage.objects.filter(pk=message.pk, status=was).update(
                status=ChatMessage.FAILED
            ):
                continue
            audit.record(
                audit_events.ANSWER,
                target=message.conversation,
                data={"message": message.pk, "status": "abandoned", "was": was,
                      "provider": message.provider, "model": message.model,
                      "answer": redact(message.content)[:2000]},
            )  # fmt: skip
        closed += 1
    return closed
