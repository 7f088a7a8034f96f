"""OpenAI Chat Completions, streamed, through the `openai` SDK: OpenAI itself and any
OpenAI-compatible endpoint by base URL (Azure OpenAI, vLLM, Ollama, LiteLLM).

Tool calls arrive as deltas (an id and name, then argument fragments by index) and leave as
complete ToolCallEvents when the stream ends; usage comes from the final chunk
(stream_options.include_usage; endpoints that ignore it give Usage(0, 0)).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .base import (
    Done,
    Event,
    ProviderError,
    Request,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    Usage,
    parse_arguments,
)
from .clients import SdkBackend, pinned_transport

CONTINUE = (
    "Your previous answer was cut off. Continue it exactly where it stopped, without repeating "
    "anything already written."
)


def _messages(request: Request) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": request.system}]
    for message in request.messages:
        if message.role == "tool":
            out.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
            )
        elif message.role == "assistant" and message.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    "content": message.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {
                                "name": call.name,
                                "arguments": json.dumps(call.arguments),
                            },
                        }
                        for call in message.tool_calls
                    ],
                }
            )
        else:
            out.append({"role": message.role, "content": message.content})
    if request.messages and request.messages[-1].role == "assistant":
        # A partial answer another provider began (failover mid-stream): ask to continue it.
        out.append({"role": "user", "content": CONTINUE})
    return out


def _tools(request: Request) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in request.tools
    ]


class OpenAIChatBackend(SdkBackend):
    """`name` names the configured provider (e.g. "openai", "vllm-eu"); `base_url` None means
    OpenAI's own API."""

    kind = "openai"

    def make_client(self):
        import openai  # noqa: PLC0415 - 500 modules: loaded once a provider is used

        return openai.OpenAI(
            api_key=self._api_key or "none",  # local endpoints often need no key
            base_url=self._base_url or None,
            timeout=self._timeout,
            max_retries=0,  # failover, not retries, moves a failed request on
            # A redirect is refused, not followed: the key and the question go only to the
            # configured endpoint (assistant.models.endpoint_problem).
            http_client=openai.DefaultHttpxClient(
                follow_redirects=False, transport=pinned_transport()
            ),
        )

    def stream(self, request: Request) -> Iterator[Event]:
        options: dict[str, Any] = {
            "model": self.model,
            "messages": _messages(request),
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.tools:
            options["tools"] = _tools(request)
            options["tool_choice"] = request.tool_choice
        reply = _Reply()
        with self._reading(
            request, lambda: self._client().chat.completions.create(**options)
        ) as stream:
            for chunk in stream:
                for text in reply.take(chunk):
                    yield TextDelta(text)
        yield from reply.ending(self.name)


_STOP_REASONS = {"stop": "end", "tool_calls": "tool_use", "length": "max_tokens"}


class _Reply:
    """What the stream's chunks have said besides text: the tool calls (an id and name, then
    argument fragments, by index), the usage and the finish reason."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, str]] = {}
        self.usage = Usage()
        self.stop: str | None = None

    def take(self, chunk: Any) -> Iterator[str]:
        """Record one chunk; the texts it carries."""
        if chunk.usage is not None:
            self.usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
        for choice in chunk.choices or ():
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    yield delta.content
                self._tool_calls(delta.tool_calls or ())
            if choice.finish_reason:
                self.stop = _STOP_REASONS.get(choice.finish_reason, choice.finish_reason)

    def _tool_calls(self, parts: Any) -> None:
        for part in parts:
            call = self.calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = part.id or call["id"]
            if part.function is not None:
                call["name"] = part.function.name or call["name"]
                call["arguments"] += part.function.arguments or ""

    def ending(self, provider: str) -> Iterator[Event]:
        """The tool calls, the usage and the end, once the stream has ended."""
        if self.stop is None:  # the body ended without a finish reason: the connection dropped
            raise ProviderError("connection", f"{provider}: the stream ended early")
        for index in sorted(self.calls):
            call = self.calls[index]
            yield ToolCallEvent(
                ToolCall(
                    call["id"] or f"call_{index}", call["name"], parse_arguments(call["arguments"])
                )
            )
        yield self.usage
        yield Done(self.stop)
