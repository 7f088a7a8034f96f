"""Secrets in what the assistant shows and keeps: a tool call whose arguments hold a
`key=value` secret, a resource whose name holds one (the answer's sources), and a model that
streams one split across tokens. The browser never receives the secret, the database and the
audit log never keep it, and the answer still completes."""

from __future__ import annotations

import pytest

from assistant.chat import Notice
from assistant.markdown import StreamingRenderer
from assistant.models import ChatMessage
from assistant.redact import redact_value
from audit.models import AuditEvent
from tagsense.tenancy.db import tenant_scope
from tests.assistant.conftest import make_resource
from tests.assistant.llm_servers import Reply
from tests.assistant.test_chat import QUESTION, ask, configure, final
from tests.assistant.test_chat import estate as estate  # noqa: F401 - the fixture
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

KEY = "AKIAABCDEFGHIJKLMNOP"

# Tool arguments in every shape a secret can take: a key=value string, key: 'quoted', JSON-ish,
# a list item, a nested object, a key that names a secret.
ARGUMENT_SHAPES = [
    {"tag": "db_password=hunter2"},
    {"tag": "Environment=prod", "text": "api_key: 'hunter2'"},
    {"text": 'say {"token": "hunter2"} now'},
    {"text": f"the key {KEY} leaked"},
    {"tag": "x", "extra": ["secret=hunter2", {"password": "hunter2"}]},
    {"password": "hunter2", "text": "web"},
]


def _everything_kept(org) -> str:
    with tenant_scope(org):
        return str(
            [
                list(AuditEvent.objects.values_list("data", flat=True)),
                list(ChatMessage.objects.values_list("content", "tool_calls", "citations")),
            ]
        )


@pytest.mark.parametrize("arguments", ARGUMENT_SHAPES, ids=range(len(ARGUMENT_SHAPES)))
def test_a_tool_call_with_a_secret_in_its_arguments_is_answered_and_audited(
    org, admin, estate, servers, arguments
):
    openai_server, _ = servers
    configure(org, servers)
    openai_server.script += [
        Reply(words=["Looking. "], tool_calls=[("call_1", "query_inventory", arguments)]),
        Reply(words=["Done."]),
    ]
    _, events = ask(client_for(admin), org)
    body, footer = final(events)
    assert "Done." in body
    with tenant_scope(org):
        answer = ChatMessage.objects.get(role=ChatMessage.ASSISTANT)
        calls = list(AuditEvent.objects.filter(action="assistant.tool_call"))
    assert answer.status == ChatMessage.COMPLETE
    assert len(calls) == 1 and calls[0].data["tool"] == "query_inventory"
    assert "REDACTED" in str(calls[0].data["arguments"])
    assert "hunter2" not in _everything_kept(org) and KEY not in _everything_kept(org)
    shown = str(events)
    assert "hunter2" not in shown and KEY not in shown


def test_a_secret_in_a_resource_name_is_not_in_the_sources(org, admin, estate, servers):
    openai_server, _ = servers
    configure(org, servers)
    with tenant_scope(org):
        account = estate["billing-orphan"].account
        make_resource(org, account, f"orphan-{KEY}", "ec2:instance", {"Environment": "prod"})
        make_resource(org, account, "orphan-db_password=hunter2", "ec2:instance",
                      {"Environment": "prod"})  # fmt: skip
    query = {"resource_type": "ec2:instance", "tag": "Environment=prod", "missing_tag": "Owner"}
    openai_server.script += [
        Reply(tool_calls=[("call_1", "query_inventory", query)]),
        Reply(words=["Three."]),
    ]
    _, events = ask(client_for(admin), org)
    _, footer = final(events)
    assert "Sources:" in footer and "orphan-" in footer  # the resources are cited
    assert KEY not in footer and "hunter2" not in footer
    with tenant_scope(org):
        citations = ChatMessage.objects.get(role=ChatMessage.ASSISTANT).citations
    assert len(citations) >= 3 and KEY not in str(citations) and "hunter2" not in str(citations)


@pytest.mark.parametrize(
    "words",
    [
        ["Your key is AKIAAB", "CDEFGHIJ", "KLMNOP and that", " is all.\n\nMore."],
        ["Set db_pass", "word=hun", "ter2 in", " the app.\n\nMore."],
        ["Use `Bearer abc", "defghijk", "lmnop` here", ".\n\nMore."],
        ["```\n-----BEGIN PRIVATE KEY-----\nMIIEvQIB", "ADANBgkqhkiG9w0\n", "-----END PRIVATE "
         "KEY-----\n```\n\nMore."],
    ],
    ids=["access key", "key=value", "bearer", "private key"],
)  # fmt: skip
def test_a_secret_streamed_across_tokens_never_reaches_the_browser(
    org, admin, estate, servers, words
):
    openai_server, _ = servers
    configure(org, servers)
    openai_server.script.append(Reply(words=words))
    _, events = ask(client_for(admin), org, QUESTION)
    streamed = "".join(data for name, data in events if name in ("token", "block", "answer"))
    for fragment in ("AKIAAB", "CDEFGHIJ", "hun", "ter2", "abcdefghijklmnop", "MIIEvQIB",
                     "ADANBgkq"):  # fmt: skip
        assert fragment not in streamed, fragment
    assert "REDACTED" in streamed and "More." in streamed
    assert any(name == "token" for name, _ in events)


def test_the_streaming_renderer_shows_a_split_secret_only_redacted():
    renderer = StreamingRenderer()
    shown = []
    for part in ["The key AKIA", "ABCDEFGH", "IJKLMNOP ", "is old.\n\nNext"]:
        blocks, tail = renderer.add(part)
        shown.append(str(blocks or "") + str(tail))
    assert all("ABCDEFGH" not in html for html in shown)
    assert "[REDACTED:AWS access key]" in "".join(shown) and "is old." in "".join(shown)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"tag": "db_password=x"}, {"tag": "db_password=[REDACTED:secret]"}),
        ({"password": "x", "n": 1}, {"password": "[REDACTED:secret]", "n": 1}),
        ({"password": None}, {"password": None}),
        ([{"a": ["token: 'x'"]}], [{"a": ["token: '[REDACTED:secret]'"]}]),
        ({"q": f'{{"api_key": "x"}} {KEY}'},
         {"q": '{"api_key": "[REDACTED:secret]"} [REDACTED:AWS access key]'}),
        ({"nested": {"secret": {"deep": "x"}}}, {"nested": {"secret": "[REDACTED:secret]"}}),
        ("plain", "plain"),
        (7, 7),
    ],
)  # fmt: skip
def test_redact_value_walks_structures_and_never_breaks_them(value, expected):
    assert redact_value(value) == expected


@pytest.mark.parametrize("text", [f"No provider could answer: {KEY}", "api_key=hunter2 failed"])
def test_every_notice_for_the_browser_is_redacted(text):
    """A notice may quote a provider's error text: it never carries a secret to the browser."""

    notice = Notice(text)
    assert KEY not in notice.text and "hunter2" not in notice.text
    assert "REDACTED" in notice.text
