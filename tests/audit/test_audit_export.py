"""The audit log's own download (issue 16, item 5): the page's filters, as CSV or JSON Lines,
oldest first, each event with its hash and the previous event's. Owners, admins and auditors
only (tests/isolation.py checks every role and another organization)."""

import csv
import hashlib
import hmac
import io
import json

import pytest

import audit
from accounts import audit_events as accounts_events
from audit.models import GENESIS_HASH, AuditEvent, chain_key
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _record(org, n, label="team"):
    with tenant_scope(org):
        for i in range(n):
            audit.record(accounts_events.TEAM_CREATE, data={"name": f"{label} {i}"})


def _download(client, org, query):
    response = client.get(f"/o/{org.slug}/audit/", query)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body.decode()


def _jsonl(text):
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("role", ["owner", "admin", "auditor"])
def test_the_whole_log_downloads_as_a_chain_a_reader_can_follow(org, role, request):
    client = client_for(request.getfixturevalue(role))  # signing in is audited too
    _record(org, 5)
    with tenant_scope(org):
        before = list(AuditEvent.objects.order_by("seq").values_list("seq", "hash"))
    response, body = _download(client, org, {"format": "jsonl"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jsonl"
    assert f'filename="{org.slug}-audit-log.jsonl"' in response["Content-Disposition"]
    events = _jsonl(body)
    # Everything there was when the download began, oldest first, and not the download itself.
    assert [(e["seq"], e["hash"]) for e in events] == before
    assert events[0]["prev_hash"] == GENESIS_HASH
    for previous, event in zip(events, events[1:], strict=False):
        assert event["seq"] == previous["seq"] + 1
        assert event["prev_hash"] == previous["hash"]
    assert events[-1]["data"] == {"name": "team 4"}
    assert events[-1]["action"] == "team.create"


def test_a_holder_of_the_chain_key_recomputes_every_hash_from_the_download(org, auditor):
    client = client_for(auditor)
    _record(org, 3)
    with tenant_scope(org):
        audit.record(
            accounts_events.TEAM_CREATE,
            data={"name": "ünïcode", "n": 1.5, "nested": {"b": [1, None]}},
            target=("team", "9", "Platform"),
            actor=Actor(Actor.USER, "7", "ana@acme.example"),
        )
    for file_format in ("jsonl", "csv"):
        _, body = _download(client, org, {"format": file_format})
        rows = (
            _jsonl(body)
            if file_format == "jsonl"
            else [
                {**r, "seq": int(r["seq"]), "organization": int(r["organization"]),
                 "data": json.loads(r["data"]), "ip_address": r["ip_address"] or None}
                for r in csv.DictReader(io.StringIO(body))
            ]
        )  # fmt: skip
        assert len(rows) >= 5
        for row in rows:
            covered = {
                key: row[key]
                for key in ("organization", "seq", "created_at", "action", "data", "ip_address",
                            "user_agent", "request_id", "prev_hash")
            }  # fmt: skip
            covered["actor"] = [row["actor_kind"], row["actor_id"], row["actor_label"]]
            covered["target"] = [row["target_type"], row["target_id"], row["target_repr"]]
            canonical = json.dumps(
                covered, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode()
            expected = hmac.new(chain_key(), canonical, hashlib.sha256).hexdigest()
            assert row["hash"] == expected, (file_format, row["seq"])


def test_the_download_is_audited_with_its_filters_and_row_count(org, auditor):
    _record(org, 3)
    with tenant_scope(org):
        audit.record(accounts_events.TEAM_DELETE, data={"name": "other"})
    response, body = _download(client_for(auditor), org, {"format": "csv", "action": "team.create"})
    assert len(list(csv.DictReader(io.StringIO(body)))) == 3
    with tenant_scope(org):
        event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "export.download"
    assert event.actor_label == auditor.email
    assert event.data == {
        "kind": "audit.events",
        "format": "csv",
        "filters": {"action": "team.create"},  # the format is the event's own field
        "rows": 3,
    }


def test_filters_choose_the_events_in_both_formats(org, auditor):
    _record(org, 3, label="alpha")
    with tenant_scope(org):
        audit.record(accounts_events.TEAM_DELETE, data={"name": "beta"})
    _, body = _download(client_for(auditor), org, {"format": "jsonl", "action": "team.delete"})
    assert [e["action"] for e in _jsonl(body)] == ["team.delete"]
    _, body = _download(client_for(auditor), org, {"format": "csv", "action": "team.*"})
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["action"] for r in rows] == ["team.create"] * 3 + ["team.delete"]
    assert json.loads(rows[-1]["data"]) == {"name": "beta"}
    assert all(len(r["hash"]) == 64 and len(r["prev_hash"]) == 64 for r in rows)


def test_cells_a_spreadsheet_would_run_are_neutralised_and_lines_stay_lines(org, auditor):
    client = client_for(auditor)
    hostile = '=HYPERLINK("http://evil.example","x")\n{"action": "forged"}'
    with tenant_scope(org):
        audit.record(
            accounts_events.TEAM_CREATE,
            data={"name": hostile},
            target=("team", "1", hostile),
            actor=Actor(Actor.USER, "7", "+cmd|' /C calc'!A0"),
        )
    _, body = _download(client, org, {"format": "csv", "action": "team.create"})
    [row] = list(csv.DictReader(io.StringIO(body)))
    assert row["target_repr"].lstrip("'") == hostile and not row["target_repr"].startswith("=")
    assert not row["actor_label"].startswith("+")
    _, body = _download(client, org, {"format": "jsonl", "action": "team.create"})
    [event] = _jsonl(body)  # a newline in a value never starts a line of its own
    assert event["target_repr"] == hostile
    assert event["data"] == {"name": hostile}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"format": "xml"}, "format"),
        ({"format": ""}, "format"),
        ({"format": "csv", "since": "last tuesday"}, "since"),
        ({"format": "jsonl", "until": "2026-13-01"}, "until"),
        ({"format": "csv", "since": "2026-06-30", "until": "2026-01-01"}, "until"),
        ({"format": "csv", "action": "team.teleport"}, "action"),
        ({"format": "csv", "user": "-1"}, "user"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field_and_writes_nothing(org, auditor, query, field):
    client = client_for(auditor)
    with tenant_scope(org):
        before = AuditEvent.objects.count()
    response, body = _download(client, org, query)
    assert response.status_code == 400
    assert list(json.loads(body)["errors"]) == [field]
    with tenant_scope(org):
        assert AuditEvent.objects.count() == before


def test_the_page_offers_both_downloads_with_its_filters(org, auditor):
    page = client_for(auditor).get(f"/o/{org.slug}/audit/", {"action": "team.*"}).content
    assert b"?action=team.%2A&amp;format=csv" in page
    assert b"?action=team.%2A&amp;format=jsonl" in page
