"""The OpenAI-compatible and Anthropic backends through the real SDKs against local servers
speaking their streaming formats, and failover between them: text as it arrives, tool calls
assembled from deltas, usage, errors before and during a stream, timeouts, and a stop that
ends the upstream request."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from assistant import failover
from assistant.backends.anthropic_messages import AnthropicBackend
from assistant.backends.base import (
    Cancel,
    Done,
    Message,
    ProviderError,
    Request,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    ToolSpec,
    Usage,
)
from assistant.backends.offline import OfflineAnalyst
from assistant.backends.openai_chat import OpenAIChatBackend
from tests.assistant.llm_servers import AnthropicServer, OpenAIServer, Reply

TOOL = ToolSpec(
    "query_inventory",
    "Query the inventory",
    {"type": "object", "properties": {"resource_type": {"type": "string"}}},
)
QUESTION = Request(
    system="You are TagSense.",
    messages=(Message("user", "Which production instances lack an Owner tag?"),),
    tools=(TOOL,),
)


@pytest.fixture
def openai_server():
    server = OpenAIServer()
    yield server
    server.stop()


@pytest.fixture
def anthropic_server():
    server = AnthropicServer()
    yield server
    server.stop()


def openai_backend(server, name="local-openai", timeout=5.0):
    return OpenAIChatBackend(
        name=name, model="local-model", api_key="sk-test-1", base_url=f"{server.url}/v1",
        timeout=timeout,
    )  # fmt: skip


def anthropic_backend(server, name="local-anthropic", timeout=5.0):
    return AnthropicBackend(
        name=name, model="claude-local", api_key="sk-ant-test", base_url=server.url,
        timeout=timeout,
    )  # fmt: skip


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_text_streams_as_it_arrives_with_usage(kind, openai_server, anthropic_server):
    server = openai_server if kind == "openai" else anthropic_server
    backend = openai_backend(server) if kind == "openai" else anthropic_backend(server)
    server.script.append(Reply(words=["Three ", "instances ", "lack ", "Owner."]))
    events = list(backend.stream(QUESTION))
    assert [e.text for e in events if isinstance(e, TextDelta)] == [
        "Three ", "instances ", "lack ", "Owner.",
    ]  # fmt: skip
    assert Usage(11, 7) in events and events[-1] == Done("end")
    [served] = server.served
    assert served.body["stream"] is True and served.body["model"] in ("local-model", "claude-local")
    if kind == "openai":
        assert served.body["messages"][0] == {"role": "system", "content": "You are TagSense."}
        assert served.headers["authorization"] == "Bearer sk-test-1"
        assert served.body["tools"][0]["function"]["name"] == "query_inventory"
    else:
        assert served.body["system"] == "You are TagSense."
        # The key travels as x-api-key (SDK 0.x) or a bearer token (SDK 2.x).
        assert "sk-ant-test" in (
            served.headers.get("x-api-key"),
            served.headers.get("authorization", "")[7:],
        )
        assert served.body["tools"][0]["input_schema"]["type"] == "object"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_tool_calls_are_assembled_from_their_deltas(kind, openai_server, anthropic_server):
    server = openai_server if kind == "openai" else anthropic_server
    backend = openai_backend(server) if kind == "openai" else anthropic_backend(server)
    arguments = {"resource_type": "ec2:instance", "tags": {"Environment": "prod"},
                 "missing_tag": "Owner"}  # fmt: skip
    server.script.append(
        Reply(words=["Let me look. "], tool_calls=[("call_7", "query_inventory", arguments)])
    )
    events = list(backend.stream(QUESTION))
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert calls == [ToolCall("call_7", "query_inventory", arguments)]
    assert events[-1] == Done("tool_use")

    # The tool's result goes back in the provider's own shape, and the model answers.
    server.script.append(Reply(words=["i-1 lacks it."]))
    follow_up = Request(
        system=QUESTION.system,
        messages=(
            *QUESTION.messages,
            Message("assistant", "Let me look. ", tool_calls=tuple(calls)),
            Message("tool", '{"rows": ["i-1"]}', tool_call_id="call_7"),
        ),
        tools=QUESTION.tools,
    )
    assert text_of(backend.stream(follow_up)) == "i-1 lacks it."
    sent = server.served[1].body["messages"]
    if kind == "openai":
        assert sent[-2]["tool_calls"][0]["function"]["name"] == "query_inventory"
        assert sent[-1] == {
            "role": "tool",
            "tool_call_id": "call_7",
            "content": '{"rows": ["i-1"]}',
        }
    else:
        tool_use = {"type": "tool_use", "id": "call_7", "name": "query_inventory"}
        assert sent[-2]["content"][-1] == {**tool_use, "input": arguments}
        assert sent[-1]["content"] == [
            {"type": "tool_result", "tool_use_id": "call_7", "content": '{"rows": ["i-1"]}'}
        ]


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(status=500), "server"),
        (Reply(status=503), "server"),
        (Reply(status=429, error_type="rate_limit_error"), "rate_limit"),
        (Reply(status=401, error_type="authentication_error"), "auth"),
        (Reply(status=400, error_type="invalid_request_error"), "bad_request"),
        (Reply(words=["a ", "b "], error_after=1), "server"),
        (Reply(words=["a ", "b "], drop_after=1), "connection"),
    ],
)
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_failures_are_classified(provider, reply, kind, openai_server, anthropic_server):
    server = openai_server if provider == "openai" else anthropic_server
    backend = openai_backend(server) if provider == "openai" else anthropic_backend(server)
    server.script.append(reply)
    with pytest.raises(ProviderError) as raised:
        list(backend.stream(QUESTION))
    assert raised.value.kind == kind
    assert raised.value.fails_over is (kind != "bad_request")
    assert "sk-" not in str(raised.value)  # the key never reaches an error message


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_silent_provider_times_out(provider, openai_server, anthropic_server):
    server = openai_server if provider == "openai" else anthropic_server
    make = openai_backend if provider == "openai" else anthropic_backend
    server.script.append(Reply(words=["a ", "b "], hang_after=1))
    with pytest.raises(ProviderError) as raised:
        list(make(server, timeout=0.5).stream(QUESTION))
    assert raised.value.kind == "timeout"


def test_failover_before_the_first_token(openai_server, anthropic_server):
    openai_server.script.append(Reply(status=503))
    anthropic_server.script.append(Reply(words=["Answered ", "by Claude."]))
    events = list(
        failover.stream(
            [openai_backend(openai_server), anthropic_backend(anthropic_server)], QUESTION
        )  # fmt: skip
    )
    assert text_of(events) == "Answered by Claude."
    switched = [e for e in events if isinstance(e, failover.Switched)]
    assert switched == [failover.Switched("local-openai", "local-model", "server", 0)]
    assert [e for e in events if isinstance(e, failover.Answering)][-1].provider == (
        "local-anthropic"
    )
    # The second provider got the question itself, no partial answer.
    assert anthropic_server.served[0].body["messages"][-1]["role"] == "user"


@pytest.mark.parametrize("how", ["error_after", "drop_after"])
def test_failover_mid_stream_continues_the_answer(how, openai_server, anthropic_server):
    openai_server.script.append(Reply(words=["Three ", "instances ", "lack "], **{how: 2}))
    anthropic_server.script.append(Reply(words=[" an Owner tag."]))
    events = list(
        failover.stream(
            [openai_backend(openai_server), anthropic_backend(anthropic_server)], QUESTION
        )  # fmt: skip
    )
    assert text_of(events) == "Three instances  an Owner tag."
    [switched] = [e for e in events if isinstance(e, failover.Switched)]
    assert switched.streamed == len("Three instances ")
    # Anthropic continues the partial answer as a prefill (no trailing whitespace allowed).
    last = anthropic_server.served[0].body["messages"][-1]
    assert last == {"role": "assistant", "content": "Three instances"}


def test_openai_compatible_endpoint_is_asked_to_continue(openai_server, anthropic_server):
    anthropic_server.script.append(Reply(words=["Half ", "an "], error_after=1))
    openai_server.script.append(Reply(words=["answer."]))
    events = list(
        failover.stream(
            [anthropic_backend(anthropic_server), openai_backend(openai_server)], QUESTION
        )  # fmt: skip
    )
    assert text_of(events) == "Half answer."
    messages = openai_server.served[0].body["messages"]
    assert messages[-2] == {"role": "assistant", "content": "Half "}
    assert messages[-1]["role"] == "user" and "Continue" in messages[-1]["content"]


def test_a_request_error_does_not_fail_over(openai_server, anthropic_server):
    openai_server.script += [Reply(status=400, error_type="invalid_request_error")] * 2
    with pytest.raises(ProviderError) as raised:
        list(failover.stream([openai_backend(openai_server), anthropic_backend(anthropic_server)],
                             QUESTION))  # fmt: skip
    assert raised.value.kind == "bad_request" and not anthropic_server.served
    # Asked once more without the tools, then given up.
    assert ["tools" in served.body for served in openai_server.served] == [True, False]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_model_that_takes_no_tools_answers_without_them(kind, openai_server, anthropic_server):
    server = openai_server if kind == "openai" else anthropic_server
    backend = openai_backend(server) if kind == "openai" else anthropic_backend(server)
    server.script += [Reply(status=400, error_type="invalid_request_error"),
                      Reply(words=["Answered ", "from the summary."])]  # fmt: skip
    events = list(failover.stream([backend], QUESTION))

    assert text_of(events) == "Answered from the summary."
    assert failover.WithoutTools(backend.name) in events
    assert "tools" in server.served[0].body and "tools" not in server.served[1].body


def test_every_provider_failing_is_one_error_naming_them(openai_server, anthropic_server):
    openai_server.script.append(Reply(status=500))
    anthropic_server.script.append(Reply(status=429, error_type="rate_limit_error"))
    with pytest.raises(failover.AllProvidersFailed) as raised:
        list(failover.stream([openai_backend(openai_server), anthropic_backend(anthropic_server)],
                             QUESTION))  # fmt: skip
    assert "local-openai (server)" in str(raised.value)
    assert "local-anthropic (rate_limit)" in str(raised.value)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_stopping_ends_the_upstream_stream(provider, openai_server, anthropic_server):
    """The consumer stops after the first word (the stop button): the local server sees its
    connection closed before it could send the rest."""
    server = openai_server if provider == "openai" else anthropic_server
    make = openai_backend if provider == "openai" else anthropic_backend
    gate = threading.Event()
    server.script.append(Reply(words=["First ", *(f"w{i} " for i in range(200))], gate=gate,
                               delay=0.01))  # fmt: skip
    events = failover.stream([make(server)], QUESTION)
    for event in events:
        if isinstance(event, TextDelta):
            assert event.text == "First "
            break
    events.close()  # the stop
    gate.set()
    served = server.served[0]
    assert served.finished.wait(10)
    assert served.cancelled
    assert served.sent < 50  # of 200 words: it stopped early


def test_the_offline_analyst_taking_over_mid_answer_says_so(openai_server):

    openai_server.script.append(Reply(words=["Three ", "instances ", "lack "], error_after=2))
    question = Request(system="", messages=QUESTION.messages, facts={"resources": 3}, mode="x")
    events = list(failover.stream([openai_backend(openai_server), OfflineAnalyst()], question))

    text = text_of(events)
    assert text.startswith("Three instances \n\n*The provider stopped mid-answer; the offline")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_stream_read_to_its_end_is_no_longer_cancellable(kind, openai_server, anthropic_server):
    """Its connection goes back to the pool and may serve another member's request: a stop
    pressed later must not shut that connection down."""

    server = openai_server if kind == "openai" else anthropic_server
    backend = openai_backend(server) if kind == "openai" else anthropic_backend(server)
    server.script.append(Reply(words=["Done."]))
    cancel = Cancel()
    events = list(backend.stream(replace(QUESTION, cancel=cancel)))
    assert text_of(events) == "Done."
    assert cancel._open == []
    server.script.append(Reply(words=["Still ", "fine."]))
    cancel.cancel()  # pressed after the first answer ended
    assert text_of(backend.stream(QUESTION)) == "Still fine."
