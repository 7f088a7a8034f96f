"""The assistant end to end through the portal's views: a question, its answer streamed as
server-sent events from local OpenAI-compatible and Anthropic servers (the real SDKs), a tool
call answered with the member's permissions, failover, the cache, the budget, the stop button,
tenancy, secrets, and the audit log of every exchange."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from assistant import services
from assistant.models import ChatMessage, Provider
from assistant.tasks import close_abandoned_answers
from audit.models import AuditEvent
from inventory import services as inventory_services
from inventory.models import Resource
from policies import evaluation
from tagsense.tenancy.db import tenant_scope
from tests.assistant.conftest import make_resource
from tests.assistant.llm_servers import Reply
from tests.conftest import client_for
from tests.factories import TeamMembershipFactory
from tests.inventory.conftest import make_account

pytestmark = pytest.mark.django_db

QUESTION = "Which production instances lack an Owner tag?"
QUERY = {"resource_type": "ec2:instance", "tag": "Environment=prod", "missing_tag": "Owner"}


@pytest.fixture
def estate(org, team):
    """Account A (held by team Platform) and account B; production instances with and
    without an Owner tag in both."""

    a, b = make_account(org, "111111111111"), make_account(org, "222222222222")
    with tenant_scope(org):
        inventory_services.grant_account(a, team)
        return {
            name: make_resource(org, account, name, "ec2:instance", tags)
            for name, account, tags in [
                ("web-owned", a, {"Environment": "prod", "Owner": "ana@acme.example"}),
                ("web-orphan", a, {"Environment": "prod"}),
                ("dev-orphan", a, {"Environment": "dev"}),
                ("billing-orphan", b, {"Environment": "prod", "db_password": "hunter2"}),
            ]
        }


def configure(org, servers, *, budget=0):
    openai_server, anthropic_server = servers
    with tenant_scope(org):
        services.save_provider(org, None, api_key="sk-local-openai-key-123456", name="local-openai",
                               kind=Provider.COMPATIBLE, model="local-model",
                               base_url=f"{openai_server.url}/v1", position=0, enabled=True,
                               timeout_seconds=5)  # fmt: skip
        services.save_provider(org, None, api_key="sk-ant-local-key-123456", name="local-claude",
                               kind=Provider.ANTHROPIC, model="claude-local",
                               base_url=anthropic_server.url, position=1, enabled=True,
                               timeout_seconds=5)  # fmt: skip
        if budget:
            services.update_settings(org, temperature=0.2, max_tokens=512,
                                     monthly_token_budget=budget)  # fmt: skip


def events_of(body: bytes) -> list[tuple[str, str]]:
    """(event, data) of a server-sent-events body."""
    found = []
    for block in body.decode().split("\n\n"):
        lines = block.splitlines()
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        if name:
            found.append((name, "\n".join(line[6:] for line in lines if line.startswith("data: "))))
    return found


def ask(client, org, question=QUESTION, mode="chat", **extra) -> tuple[str, list]:
    """POST the question, then GET its stream: (the ask fragment, the events)."""
    fragment = client.post(f"/o/{org.slug}/assistant/ask/", {"question": question, "mode": mode,
                                                             **extra}).content.decode()  # fmt: skip
    url = re.search(r'sse-connect="([^"]+)"', fragment).group(1)
    response = client.get(url)
    assert (
        response.status_code == 200
        and response["Content-Type"] == "text/event-stream; charset=utf-8"
    )
    return fragment, events_of(b"".join(response.streaming_content))


def final(events) -> tuple[str, str]:
    """The answer's last rendered HTML and its footer."""
    answers = [data for name, data in events if name == "answer"]
    done = [data for name, data in events if name == "done"]
    return answers[-1], done[-1]


def test_the_answer_streams_and_a_tool_call_finds_the_right_resources(org, admin, estate, servers):
    openai_server, _ = servers
    configure(org, servers)
    openai_server.script += [
        Reply(words=["Let me ", "check. "], tool_calls=[("call_1", "query_inventory", QUERY)]),
        Reply(words=["Two ", "production ", "instances ", "lack ", "an Owner tag."]),
    ]
    client = client_for(admin)
    _, events = ask(client, org)

    tokens = [data for name, data in events if name == "token"]
    assert len(tokens) >= 7 and "Let me" in tokens[0] and "Two production" not in tokens[0]
    body, footer = final(events)
    assert "Two production instances lack an Owner tag." in body
    assert "Answered by local-openai (local-model)" in footer
    for name in ("web-orphan", "billing-orphan"):  # cited, linked to the resource pages
        resource = estate[name]
        assert f"/o/{org.slug}/inventory/resources/{resource.pk}/" in footer, footer
    for name in ("web-owned", "dev-orphan"):
        assert f"/inventory/resources/{estate[name].pk}/" not in footer
    # The model was given the tool's result with the two resources.
    tool_turn = openai_server.served[1].body["messages"][-1]
    assert tool_turn["role"] == "tool" and "web-orphan" in tool_turn["content"]
    assert "billing-orphan" in tool_turn["content"] and "web-owned" not in tool_turn["content"]

    with tenant_scope(org):
        actions = list(AuditEvent.objects.filter(action__startswith="assistant.")
                       .order_by("seq").values_list("action", "data"))  # fmt: skip
    assert [a for a, _ in actions] == ["assistant.provider_create", "assistant.provider_create",
                                       "assistant.prompt", "assistant.tool_call",
                                       "assistant.answer"]  # fmt: skip
    prompt, tool_call, answer = (d for _, d in actions[2:])
    assert prompt["question"] == QUESTION
    assert tool_call["tool"] == "query_inventory" and tool_call["arguments"] == QUERY
    assert answer["provider"] == "local-openai" and answer["model"] == "local-model"
    assert answer["tokens_in"] == 22 and answer["tokens_out"] == 14  # two model turns
    assert answer["status"] == "complete" and answer["failovers"] == []
    assert answer["latency_ms"] >= 0 and answer["cached"] is False


def test_with_no_provider_the_offline_analyst_answers_the_question_through_the_tool_loop(
    org, admin, estate
):
    _, events = ask(client_for(admin), org)  # no provider configured: the offline analyst
    body, footer = final(events)

    assert "2 production instances lack the <code>Owner</code> tag" in body
    assert "Answered by offline (offline-analyst)" in footer
    for name in ("web-orphan", "billing-orphan"):  # found in the member's scope, and cited
        url = f"/o/{org.slug}/inventory/resources/{estate[name].pk}/"
        assert f'href="{url}"' in body and f'href="{url}"' in footer
    for name in ("web-owned", "dev-orphan"):
        assert f"/inventory/resources/{estate[name].pk}/" not in body
    with tenant_scope(org):
        [call] = AuditEvent.objects.filter(action="assistant.tool_call")
    assert call.data["tool"] == "query_inventory" and call.data["provider"] == "offline"
    assert call.data["arguments"]["missing_tag"] == "Owner"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_model_that_keeps_calling_tools_is_told_to_answer_after_four_rounds(
    provider, org, admin, estate, servers
):
    openai_server, anthropic_server = servers
    configure(org, servers)
    server = openai_server if provider == "openai" else anthropic_server
    if provider == "anthropic":
        openai_server.script += [Reply(status=503)] * 5  # the first provider is down
    server.script += [
        Reply(words=[f"Round {i}. "], tool_calls=[(f"call_{i}", "query_inventory", QUERY)])
        for i in range(5)
    ]
    _, events = ask(client_for(admin), org)
    body, _ = final(events)

    assert "Round 4." in body  # the fifth turn's text is the answer
    bodies = [served.body for served in server.served]
    assert len(bodies) == 5
    choices = [b.get("tool_choice") for b in bodies]
    none = "none" if provider == "openai" else {"type": "none"}
    assert choices[-1] == none and none not in choices[:-1]
    assert all(b.get("tools") for b in bodies)  # still declared: the turns hold tool calls
    with tenant_scope(org):
        assert AuditEvent.objects.filter(action="assistant.tool_call").count() == 4
        answer = ChatMessage.objects.get(role=ChatMessage.ASSISTANT)
    assert answer.status == "complete" and len(answer.tool_calls) == 4


def test_a_viewers_tool_call_sees_only_their_teams_accounts(org, viewer, team, estate, servers):

    TeamMembershipFactory(organization=org, team=team, user=viewer)
    openai_server, _ = servers
    configure(org, servers)
    openai_server.script += [
        Reply(tool_calls=[("call_1", "query_inventory", QUERY)]),
        Reply(words=["One."]),
    ]
    _, events = ask(client_for(viewer), org)
    _, footer = final(events)
    assert f"/inventory/resources/{estate['web-orphan'].pk}/" in footer
    assert f"/inventory/resources/{estate['billing-orphan'].pk}/" not in footer
    tool_turn = openai_server.served[1].body["messages"][-1]["content"]
    assert "web-orphan" in tool_turn and "billing-orphan" not in tool_turn


def test_the_grounding_links_an_answer_uses_are_its_sources_and_invented_ones_are_not(
    org, admin, estate, servers
):
    openai_server, _ = servers
    configure(org, servers)
    untagged = f"/o/{org.slug}/inventory/?untagged=on"
    invented = f"/o/{org.slug}/inventory/resources/999999/"
    openai_server.script.append(Reply(words=[
        f"Three resources are [untagged, click here]({untagged}) ",
        f"and [this one]({invented}) is made up.",
    ]))  # fmt: skip
    _, events = ask(client_for(admin), org)
    _, footer = final(events)

    sources = footer.split("Sources:", 1)[1]
    assert f'<a href="{untagged}">Untagged resources</a>' in sources
    assert "click here" not in sources and invented not in sources
    with tenant_scope(org):
        saved = ChatMessage.objects.get(role=ChatMessage.ASSISTANT)
    assert saved.citations == [{"label": "Untagged resources", "url": untagged}]


def test_a_model_without_tools_answers_and_the_panel_says_so(org, admin, estate, servers):
    openai_server, anthropic_server = servers
    configure(org, servers)
    openai_server.script += [Reply(status=400, error_type="invalid_request_error"),
                             Reply(words=["From ", "the summary."])]  # fmt: skip
    _, events = ask(client_for(admin), org)
    body, footer = final(events)
    assert "From the summary." in body and "Answered by local-openai" in footer
    assert "local-openai refused the tools (400): it answers without them." in footer
    assert not anthropic_server.served


def test_failover_to_anthropic_and_the_answer_says_who_answered(org, admin, estate, servers):
    openai_server, anthropic_server = servers
    configure(org, servers)
    openai_server.script.append(Reply(words=["Two ", "production "], drop_after=1))
    anthropic_server.script.append(Reply(words=[" instances lack Owner."]))
    _, events = ask(client_for(admin), org)
    body, footer = final(events)
    assert "Two  instances lack Owner." in body
    assert "Answered by local-claude (claude-local)" in footer
    assert "after local-openai failed (connection)" in footer
    with tenant_scope(org):
        answer = AuditEvent.objects.get(action="assistant.answer").data
    assert answer["provider"] == "local-claude"
    assert answer["failovers"] == [{"provider": "local-openai", "kind": "connection",
                                    "streamed": len("Two ")}]  # fmt: skip


def test_the_same_question_over_the_same_data_is_answered_from_cache(org, admin, estate, servers):
    openai_server, _ = servers
    configure(org, servers)
    openai_server.script.append(Reply(words=["Cached ", "answer."]))
    client = client_for(admin)
    ask(client, org)
    _, events = ask(client, org)  # a new conversation, the same question
    body, footer = final(events)
    assert "Cached answer." in body and "from cache" in footer
    assert len(openai_server.served) == 1
    # The data changes (a scan retags, the evaluation follows, both audited): the context
    # snapshot differs, and the question is asked again.

    with tenant_scope(org):
        Resource.objects.filter(pk=estate["web-orphan"].pk).update(
            tags={"Environment": "prod", "Owner": "bo@acme.example"}
        )
        evaluation.evaluate_organization(org)
    openai_server.script.append(Reply(words=["Fresh."]))
    _, events = ask(client, org)
    assert "Fresh." in final(events)[0] and len(openai_server.served) == 2


def test_an_answer_given_after_a_failover_is_not_cached(org, admin, estate, servers):
    openai_server, anthropic_server = servers
    configure(org, servers)
    openai_server.script.append(Reply(status=503))
    anthropic_server.script.append(Reply(words=["Fallback ", "answer."]))
    client = client_for(admin)
    ask(client, org)
    openai_server.script.append(Reply(words=["Recovered ", "answer."]))  # the provider is back
    _, events = ask(client, org)
    body, footer = final(events)
    assert "Recovered answer." in body and "from cache" not in footer


def test_an_exhausted_budget_leaves_the_offline_analyst(org, admin, estate, servers):
    openai_server, _ = servers
    configure(org, servers, budget=10)
    openai_server.script.append(Reply(words=["Spent."]))
    client = client_for(admin)
    ask(client, org)  # 18 tokens: over the budget of 10
    _, events = ask(client, org, "Summarise our compliance", mode="auditor")
    body, footer = final(events)
    assert len(openai_server.served) == 1
    assert "budget is used up" in footer and "Answered by offline" in footer
    assert body.strip()


def test_a_budget_that_runs_out_between_tool_rounds_ends_the_answer(org, admin, estate, servers):
    openai_server, _ = servers
    configure(org, servers, budget=30)  # each turn reports 11 + 7 tokens
    openai_server.script += [
        Reply(words=[f"Round {i}. "], tool_calls=[(f"call_{i}", "query_inventory", QUERY)])
        for i in range(3)
    ]
    _, events = ask(client_for(admin), org)
    body, footer = final(events)
    assert len(openai_server.served) == 2  # 36 tokens after two turns: no third
    assert "Round 1." in body and "budget ran out during this answer" in footer
    # Cut short by the budget, the answer is not cached: with a new budget, it is asked again.
    with tenant_scope(org):
        services.update_settings(org, temperature=0.2, max_tokens=512, monthly_token_budget=0)
    openai_server.script.append(Reply(words=["Whole answer."]))
    body, footer = final(ask(client_for(admin), org)[1])
    assert "Whole answer." in body and "from cache" not in footer


def test_stop_ends_the_upstream_request_and_keeps_the_partial_answer(org, admin, estate, servers):
    openai_server, _ = servers
    configure(org, servers)
    gate = threading.Event()
    openai_server.script.append(
        Reply(words=["First ", *(f"w{i} " for i in range(300))], gate=gate, delay=0.01)
    )
    client = client_for(admin)
    fragment = client.post(f"/o/{org.slug}/assistant/ask/", {"question": QUESTION}).content
    url = re.search(r'sse-connect="([^"]+)"', fragment.decode()).group(1)
    pk = int(url.rstrip("/").rsplit("/", 1)[1])
    stream = iter(client.get(url).streaming_content)
    seen = b""
    while b"First" not in seen:
        seen += next(stream)
    assert client.post(f"/o/{org.slug}/assistant/stop/{pk}/").status_code == 204
    gate.set()
    rest = b"".join(stream)
    _, footer = final(events_of(seen + rest))
    assert "Stopped." in footer
    served = openai_server.served[0]
    assert served.finished.wait(10) and served.cancelled and served.sent < 100
    with tenant_scope(org):
        message = ChatMessage.objects.get(pk=pk)
        stopped = AuditEvent.objects.get(action="assistant.stop")
    assert message.status == "stopped" and message.content.startswith("First")
    # The provider reported no usage (stopped before its end): counted by estimate.
    assert message.tokens_in > 100 and message.tokens_out >= 1
    assert stopped.actor_id == str(admin.pk) and stopped.data["message"] == pk


def test_secrets_never_reach_a_provider_or_the_audit_log(org, admin, estate, servers):
    openai_server, anthropic_server = servers
    configure(org, servers)
    openai_server.script += [
        Reply(tool_calls=[("call_1", "query_inventory", QUERY)]),
        Reply(words=["Done."]),
    ]
    ask(client_for(admin), org, f"{QUESTION} Our key is AKIAABCDEFGHIJKLMNOP, db_password=hunter2")
    sent = str([s.body for s in openai_server.served])
    assert "AKIAABCDEFGHIJKLMNOP" not in sent and "hunter2" not in sent
    assert "sk-local-openai-key-123456" not in sent  # the key travels only as a header
    with tenant_scope(org):
        logged = str(list(AuditEvent.objects.values_list("data", flat=True)))
        stored = str(list(ChatMessage.objects.values_list("content", flat=True)))
        provider = Provider.objects.get(name="local-openai")
    for text in (logged, stored):
        assert "AKIAABCDEFGHIJKLMNOP" not in text and "hunter2" not in text
        assert "sk-local-openai-key-123456" not in text
    assert "sk-local" not in provider.encrypted_api_key
    assert provider.api_key() == "sk-local-openai-key-123456"


@pytest.mark.django_db(transaction=True)  # the stream is read in a thread of its own
def test_stop_ends_the_request_while_the_provider_is_silent(org, admin, estate, servers):
    openai_server, anthropic_server = servers
    configure(org, servers)
    with tenant_scope(org):  # longer than the server stays silent (30 s): no timeout ends it
        Provider.objects.filter(name="local-openai").update(timeout_seconds=120)
    openai_server.script.append(Reply(words=["First ", "and never more."], hang_after=1))
    client = client_for(admin)
    fragment = client.post(f"/o/{org.slug}/assistant/ask/", {"question": QUESTION}).content
    url = re.search(r'sse-connect="([^"]+)"', fragment.decode()).group(1)
    pk = int(url.rstrip("/").rsplit("/", 1)[1])
    chunks, first = [], threading.Event()

    def read():  # as the server does: the stream is read on, and blocks on the silent provider
        try:
            for chunk in client.get(url).streaming_content:
                chunks.append(chunk)
                if b"First" in chunk:
                    first.set()
        finally:
            connections.close_all()

    reader = threading.Thread(target=read)
    reader.start()
    assert first.wait(10)
    time.sleep(0.5)  # not an assertion: lets the reader block on the provider again
    assert client.post(f"/o/{org.slug}/assistant/stop/{pk}/").status_code == 204
    reader.join(20)
    assert not reader.is_alive()  # the stop ended it: the provider is silent for 30 s more
    _, footer = final(events_of(b"".join(chunks)))
    assert "Stopped." in footer and "failed" not in footer
    with tenant_scope(org):
        message = ChatMessage.objects.get(pk=pk)
    # Cancelled, not timed out: no failover recorded, the next provider never asked.
    assert message.status == "stopped" and message.failovers == []
    assert message.content.startswith("First") and not anthropic_server.served


def test_another_members_or_organizations_answer_is_a_404(org, other_org, admin, editor, outsider,
                                                          estate, servers):  # fmt: skip
    configure(org, servers)
    servers[0].script.append(Reply(words=["x"]))
    fragment = client_for(admin).post(f"/o/{org.slug}/assistant/ask/", {"question": "hi"})
    url = re.search(r'sse-connect="([^"]+)"', fragment.content.decode()).group(1)
    pk = url.rstrip("/").rsplit("/", 1)[1]
    assert client_for(editor).get(url).status_code == 404  # not their conversation
    assert (
        client_for(outsider).get(f"/o/{other_org.slug}/assistant/stream/{pk}/").status_code == 404
    )
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(editor).post(f"/o/{org.slug}/assistant/stop/{pk}/").status_code == 404
    assert not servers[0].served  # nothing was streamed
    # Another member's conversation, or another organization's, can be neither read nor
    # continued: a 404, and nothing added to it.
    conversation = re.search(r'name="conversation"[^>]*value="(\d+)"', fragment.content.decode())
    conversation = conversation.group(1)
    assert client_for(editor).get(
        f"/o/{org.slug}/assistant/?c={conversation}").status_code == 404  # fmt: skip
    more = {"question": "more", "conversation": conversation}
    assert client_for(editor).post(f"/o/{org.slug}/assistant/ask/", more).status_code == 404
    elsewhere = client_for(outsider).post(f"/o/{other_org.slug}/assistant/ask/", more)
    assert elsewhere.status_code == 404
    with tenant_scope(org):
        assert ChatMessage.objects.filter(conversation_id=conversation).count() == 2


def test_settings_keep_keys_write_only_and_are_for_admins(org, admin, editor, auditor):
    client = client_for(admin)
    response = client.post(f"/o/{org.slug}/assistant/settings/", {
        "action": "provider", "name": "openai", "kind": "openai", "model": "gpt-test",
        "api_key": "sk-very-secret-key-000000", "position": "0", "enabled": "on",
        "timeout_seconds": "20",
    })  # fmt: skip
    assert response.status_code == 302
    page = client.get(f"/o/{org.slug}/assistant/settings/").content.decode()
    assert "gpt-test" in page and "sk-very-secret" not in page and "key set" in page
    with tenant_scope(org):
        event = AuditEvent.objects.get(action="assistant.provider_create")
    assert event.data["changed"]["api_key"] == "set" and "sk-very" not in str(event.data)
    bad = client.post(f"/o/{org.slug}/assistant/settings/", {
        "action": "provider", "name": "compat", "kind": "openai_compatible", "model": "m",
        "base_url": "not a url", "position": "1", "timeout_seconds": "5",
    })  # fmt: skip
    assert bad.status_code == 400 and "Nothing was saved" in bad.content.decode()
    same_name = client.post(f"/o/{org.slug}/assistant/settings/", {
        "action": "provider", "name": "openai", "kind": "anthropic", "model": "m",
        "position": "1", "timeout_seconds": "5",
    })  # fmt: skip
    assert same_name.status_code == 400 and "exists already" in same_name.content.decode()
    with tenant_scope(org):
        assert Provider.objects.count() == 1
    assert client_for(editor).get(f"/o/{org.slug}/assistant/settings/").status_code == 403
    usage = client_for(auditor).get(f"/o/{org.slug}/assistant/usage/")
    assert usage.status_code == 200


def test_a_key_is_never_sent_to_an_endpoint_it_was_not_entered_for(org, admin):
    client = client_for(admin)
    form = {"action": "provider", "name": "vllm", "kind": "openai_compatible", "model": "m",
            "base_url": "https://llm.acme.example/v1", "api_key": "sk-entered-for-acme-000000",
            "position": "0", "enabled": "on", "timeout_seconds": "5"}  # fmt: skip
    assert client.post(f"/o/{org.slug}/assistant/settings/", form).status_code == 302
    with tenant_scope(org):
        provider = Provider.objects.get(name="vllm")
    assert provider.api_key() == "sk-entered-for-acme-000000"

    # Pointed at another host without a new key: the stored key is dropped, and the admin told.
    moved = {**form, "provider": provider.pk, "api_key": "",
             "base_url": "https://collector.elsewhere.example/v1"}  # fmt: skip
    response = client.post(f"/o/{org.slug}/assistant/settings/", moved, follow=True)
    assert "its API key was removed" in response.content.decode()
    with tenant_scope(org):
        provider.refresh_from_db()
        event = AuditEvent.objects.filter(action="assistant.provider_update").latest("seq")
    assert provider.api_key() == "" and provider.base_url.startswith("https://collector")
    assert event.data["changed"]["api_key"] == "removed: the endpoint changed"

    # The instance-metadata service, or a scheme other than http(s), is refused outright.
    for url in ("http://169.254.169.254/latest/", "http://[fd00:ec2::254]/", "ftp://llm.example/",
                "http://[::ffff:169.254.169.254]/"):  # fmt: skip
        refused = client.post(f"/o/{org.slug}/assistant/settings/", {**moved, "base_url": url})
        assert refused.status_code == 400 and "Nothing was saved" in refused.content.decode()
    with tenant_scope(org):
        assert Provider.objects.get(pk=provider.pk).base_url.startswith("https://collector")


def test_assistant_use_per_member_for_auditors(org, admin, editor, auditor, estate, servers):
    configure(org, servers)
    servers[0].script += [Reply(words=["Answer."]), Reply(words=["Another."])]
    ask(client_for(admin), org)
    ask(client_for(editor), org, "What is our compliance score?")
    page = client_for(auditor).get(f"/o/{org.slug}/assistant/usage/").content.decode()

    rows = {
        re.sub(r"<[^>]+>", "", cells[0]): cells[1:5]
        for cells in (
            re.findall(r"<td>(.*?)</td>", row, re.S)
            for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
        )
        if cells
    }
    # answers, tokens in, tokens out, total
    assert rows[admin.email] == ["1", "11", "7", "18"]
    assert rows[editor.email] == ["1", "11", "7", "18"]
    # Each member's link lists that member's assistant events, and nobody else's.
    link = re.search(rf'href="([^"]*user={admin.pk})"', page).group(1).replace("&amp;", "&")
    log = client_for(auditor).get(link).content.decode()
    actions = re.findall(r"<td><code>(assistant\.\w+)</code></td>\s*<td>([^<]*)</td>", log)
    assert {action for action, _ in actions} == {"assistant.prompt", "assistant.answer"}
    assert {actor for _, actor in actions} == {admin.email}


def test_answers_that_will_never_finish_are_closed_and_audited(org, admin, estate, servers):

    client = client_for(admin)

    def asked(question):
        fragment = client.post(f"/o/{org.slug}/assistant/ask/", {"question": question})
        return re.search(r'sse-connect="[^"]*/(\d+)/"', fragment.content.decode())

    stale, fresh = asked("closed the page at once"), asked("still to be read")
    with tenant_scope(org):
        ChatMessage.objects.filter(pk=stale.group(1)).update(
            created_at=timezone.now() - timedelta(hours=1)
        )

    assert close_abandoned_answers() == 1
    with tenant_scope(org):
        assert ChatMessage.objects.get(pk=stale.group(1)).status == "failed"
        assert ChatMessage.objects.get(pk=fresh.group(1)).status == "pending"
        [event] = AuditEvent.objects.filter(action="assistant.answer")
    assert event.data["status"] == "abandoned" and event.data["message"] == int(stale.group(1))
    assert event.actor_kind == "system"
    task = PeriodicTask.objects.get(name="Close abandoned assistant answers")
    assert task.task == "assistant.close_abandoned_answers" and task.enabled


def test_the_conversation_list_shows_the_new_conversation_once_its_answer_is_done(
    org, admin, estate
):
    client = client_for(admin)
    page = client.get(f"/o/{org.slug}/assistant/").content.decode()
    assert 'id="assistant-conversations"' in page and "None yet." in page
    fragment, events = ask(client, org, "Where do we stand?")
    _, done = final(events)
    # swapped out of band into the page's list: the page's own element, replaced whole
    listed = re.search(r'<ul id="assistant-conversations" hx-swap-oob="true">(.*?)</ul>', done,
                       re.S)  # fmt: skip
    assert listed, done
    conversation = re.search(r'id="assistant-conversation" value="(\d+)"', fragment).group(1)
    assert f"?c={conversation}" in listed.group(1) and 'aria-current="page"' in listed.group(1)
    assert "Where do we stand?" in listed.group(1)
    # a second conversation goes on top; the list holds only the member's own
    _, events = ask(client_for(admin), org, "And the costs?")
    items = re.findall(r"<li>(.*?)</li>", final(events)[1], re.S)
    assert "And the costs?" in items[0] and "Where do we stand?" in items[1]
    assert len(items) == 2
