"""Anthropic Messages, streamed, through the `anthropic` SDK's raw events (message_start with
the input tokens, content blocks of text or tool_use with input_json_delta fragments,
message_delta with the stop reason and output tokens, and error events)."""

from __future__ import annotations

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


def _messages(request: Request) -> list[dict[str, Any]]:
    """Anthropic's turns: tool results are user turns of tool_result blocks (consecutive ones
    merged), an assistant turn with tool calls holds tool_use blocks, and a trailing assistant
    turn (a partial answer another provider began) is a prefill the model continues."""
    out: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
            }
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif message.role == "assistant" and message.tool_calls:
            blocks: list[dict[str, Any]] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in message.tool_calls
            ]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": message.role, "content": message.content})
    if out and out[-1]["role"] == "assistant" and isinstance(out[-1]["content"], str):
        out[-1]["content"] = out[-1]["content"].rstrip()  # a prefill may not end in whitespace
    return out


class AnthropicBackend(SdkBackend):
    kind = "anthropic"

    def make_client(self):
        import anthropic  # noqa: PLC0415 - 3,000 modules (~50 MiB): loaded once a provider is used

        return anthropic.Anthropic(
            api_key=self._api_key,
            base_url=self._base_url or None,
            timeout=self._timeout,
            max_retries=0,  # failover, not retries, moves a failed request on
            http_client=anthropic.DefaultHttpxClient(
                follow_redirects=False, transport=pinned_transport()
            ),  # as openai_chat
        )

    def stream(self, request: Request) -> Iterator[Event]:
        options = _options(self.model, request)
        reply = _Reply()
        with self._reading(request, lambda: self._client().messages.create(**options)) as stream:
            for event in stream:
                text = reply.take(event)
                if text:
                    yield TextDelta(text)
        yield from reply.ending(self.name)


def _options(model: str, request: Request) -> dict[str, Any]:
    options: dict[str, Any] = {
        "model": model,
        "system": request.system,
        "messages": _messages(request),
        "max_tokens": request.max_tokens,
        # No temperature: the anthropic SDK 2.x Messages API does not take one.
        "stream": True,
    }
    if request.tools:
        options["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
        options["tool_choice"] = {"type": request.tool_choice}
    return options


class _Reply:
    """What the stream's events have said besides text: the tool_use blocks (their input
    JSON in fragments, by block index), the token counts and the stop reason."""

    def __init__(self) -> None:
        self.tools: dict[int, dict[str, str]] = {}
        self.input_tokens = self.output_tokens = 0
        self.stop: str | None = None

    def take(self, event: Any) -> str | None:
        """Record one event; the text it carries, if any."""
        kind = event.type
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "message_start":
            usage = event.message.usage
            self.input_tokens = getattr(usage, "input_tokens", 0) or 0
            self.output_tokens = getattr(usage, "output_tokens", 0) or 0
        elif kind == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            self.tools[event.index] = {"id": block.id, "name": block.name, "json": ""}
        elif kind == "message_delta":
            self.output_tokens = getattr(event.usage, "output_tokens", self.output_tokens) or 0
            reason = event.delta.stop_reason
            if reason:
                self.stop = {"end_turn": "end", "stop_sequence": "end"}.get(reason, reason)
        return None

    def _delta(self, event: Any) -> str | None:
        delta = event.delta
        if delta.type == "text_delta":
            return delta.text
        if delta.type == "input_json_delta" and event.index in self.tools:
            self.tools[event.index]["json"] += delta.partial_json or ""
        return None

    def ending(self, provider: str) -> Iterator[Event]:
        """The tool calls, the usage and the end, once the stream has ended."""
        if self.stop is None:  # no stop reason: the connection dropped before message_delta
            raise ProviderError("connection", f"{provider}: the stream ended early")
        for index in sorted(self.tools):
            tool = self.tools[index]
            yield ToolCallEvent(ToolCall(tool["id"], tool["name"], parse_arguments(tool["json"])))
        yield Usage(self.input_tokens, self.output_tokens)
        yield Done(self.stop)
