"""Local HTTP servers that speak OpenAI's Chat Completions streaming and Anthropic's Messages
streaming (server-sent events over chunked HTTP/1.1), for the real SDKs to talk to.

Each server answers its requests from a script, one Reply per request, in order: a stream of
text and tool calls, optionally failing part-way (an error event, a dropped connection, a
hang), or an HTTP error before any token. It records every request body and, per reply, how
many events it sent and whether the client went away before the end (the stop button).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    words: list[str] = field(default_factory=list)  # text deltas, in order
    tool_calls: list[tuple[str, str, dict]] = field(default_factory=list)  # (id, name, args)
    status: int | None = None  # an HTTP error instead of a stream
    error_after: int | None = None  # an error event after this many text deltas
    error_type: str = "overloaded_error"
    drop_after: int | None = None  # the connection dropped after this many text deltas
    hang_after: int | None = None  # silence after this many text deltas (a timeout)
    delay: float = 0.0  # between events
    gate: threading.Event | None = None  # the stream waits for it after gate_after deltas
    gate_after: int = 1
    input_tokens: int = 11
    output_tokens: int = 7


@dataclass
class Served:
    body: dict[str, Any]
    headers: dict[str, str]
    sent: int = 0  # events written
    cancelled: bool = False  # the client closed the connection before the end
    finished: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LLMServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        served = Served(body, {k.lower(): v for k, v in self.headers.items()})
        with self.server.lock:
            self.server.served.append(served)
            reply = self.server.script.pop(0) if self.server.script else Reply(words=["(empty)"])
        try:
            self._answer(reply, served)
        except (BrokenPipeError, ConnectionResetError):
            served.cancelled = True
        finally:
            served.finished.set()

    def _answer(self, reply: Reply, served: Served) -> None:
        if reply.status is not None:
            payload = json.dumps(self.server.error_body(reply.status, reply.error_type)).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for index, event in enumerate(self.server.events(reply)):
            if isinstance(event, _Fail):
                if event.how == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if event.how == "hang":
                    self.server.stopping.wait(30)
                    return
                self._chunk(event.payload)
                break
            if reply.gate is not None and index == self.server.first_text_index + reply.gate_after:
                reply.gate.wait(30)
            self._chunk(event)
            served.sent += 1
            if reply.delay:
                time.sleep(reply.delay)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@dataclass
class _Fail:
    how: str  # drop, hang or error
    payload: bytes = b""


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (
        head + "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n"
    ).encode()


class LLMServer(ThreadingHTTPServer):
    daemon_threads = True
    first_text_index = 0  # the index of the first text event in events()

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[Reply] = []
        self.served: list[Served] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def _failure(self, reply: Reply, count: int) -> _Fail | None:
        if reply.drop_after == count:
            return _Fail("drop")
        if reply.hang_after == count:
            return _Fail("hang")
        if reply.error_after == count:
            return _Fail("error", self.error_event(reply.error_type))
        return None

    def error_body(self, status: int, error_type: str) -> dict:
        raise NotImplementedError

    def error_event(self, error_type: str) -> bytes:
        raise NotImplementedError

    def events(self, reply: Reply):
        raise NotImplementedError


class OpenAIServer(LLMServer):
    """POST /v1/chat/completions with stream=true: chat.completion.chunk events, tool-call
    deltas by index (id and name first, then argument fragments), a finish_reason, a usage
    chunk, and [DONE]."""

    first_text_index = 1

    def error_body(self, status: int, error_type: str) -> dict:
        return {"error": {"message": f"{error_type} ({status})", "type": error_type, "code": None}}

    def error_event(self, error_type: str) -> bytes:
        return _sse({"error": {"message": "upstream failed", "type": error_type, "code": None}})

    def _chunk(self, delta: dict, finish: str | None = None, **extra) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return _sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                     "model": "local", "choices": [choice], **extra})  # fmt: skip

    def events(self, reply: Reply):
        yield self._chunk({"role": "assistant", "content": ""})
        for count, word in enumerate(reply.words):
            if (fail := self._failure(reply, count)) is not None:
                yield fail
                return
            yield self._chunk({"content": word})
        if (fail := self._failure(reply, len(reply.words))) is not None:
            yield fail
            return
        for index, (call_id, name, arguments) in enumerate(reply.tool_calls):
            text = json.dumps(arguments)
            head = {"index": index, "id": call_id, "type": "function",
                    "function": {"name": name, "arguments": ""}}  # fmt: skip
            yield self._chunk({"tool_calls": [head]})
            for start in range(0, len(text), 7):
                part = {"index": index, "function": {"arguments": text[start : start + 7]}}
                yield self._chunk({"tool_calls": [part]})
        yield self._chunk({}, "tool_calls" if reply.tool_calls else "stop")
        usage = {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
                 "total_tokens": reply.input_tokens + reply.output_tokens}  # fmt: skip
        yield _sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                    "model": "local", "choices": [], "usage": usage})  # fmt: skip
        yield _sse("[DONE]")


class AnthropicServer(LLMServer):
    """POST /v1/messages with stream=true: message_start, content blocks (text_delta;
    tool_use with input_json_delta), ping, message_delta with stop_reason and usage,
    message_stop, and error events."""

    first_text_index = 2

    def error_body(self, status: int, error_type: str) -> dict:
        return {"type": "error", "error": {"type": error_type, "message": f"{status}"}}

    def error_event(self, error_type: str) -> bytes:
        return _sse({"type": "error", "error": {"type": error_type, "message": "Overloaded"}},
                    "error")  # fmt: skip

    def events(self, reply: Reply):
        message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "local",
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1}}  # fmt: skip
        yield _sse({"type": "message_start", "message": message}, "message_start")
        block = {"type": "content_block_start", "index": 0,
                 "content_block": {"type": "text", "text": ""}}  # fmt: skip
        yield _sse(block, "content_block_start")
        for count, word in enumerate(reply.words):
            if (fail := self._failure(reply, count)) is not None:
                yield fail
                return
            delta = {"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": word}}  # fmt: skip
            yield _sse(delta, "content_block_delta")
            if count == 0:
                yield _sse({"type": "ping"}, "ping")
        if (fail := self._failure(reply, len(reply.words))) is not None:
            yield fail
            return
        yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        for offset, (call_id, name, arguments) in enumerate(reply.tool_calls, start=1):
            start = {"type": "content_block_start", "index": offset,
                     "content_block": {"type": "tool_use", "id": call_id, "name": name,
                                       "input": {}}}  # fmt: skip
            yield _sse(start, "content_block_start")
            text = json.dumps(arguments)
            for at in range(0, len(text), 7):
                part = {"type": "input_json_delta", "partial_json": text[at : at + 7]}
                delta = {"type": "content_block_delta", "index": offset, "delta": part}
                yield _sse(delta, "content_block_delta")
            yield _sse({"type": "content_block_stop", "index": offset}, "content_block_stop")
        stop = "tool_use" if reply.tool_calls else "end_turn"
        yield _sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": reply.output_tokens}}, "message_delta")  # fmt: skip
        yield _sse({"type": "message_stop"}, "message_stop")
