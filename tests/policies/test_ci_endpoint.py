"""The CI check endpoint and the documented client (docs/ci.md) against the live portal: a
plan whose resources lack a required tag fails, and passes once the tag comes through the
provider's default_tags — both plans made by terraform from tests/policies/fixtures/terraform."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from accounts import tokens
from accounts.models import Membership
from policies import services
from policies.ci import cli
from policies.engine.spec import parse_rules
from tagsense.tenancy.db import tenant_scope

FIXTURES = Path(__file__).parent / "fixtures" / "terraform"
PLAN = FIXTURES / "plan.json"
OWNER_RULE = """
version: 1
rules:
  - id: owner-required
    title: Every resource names its Owner
    check: required_key
    key: Owner
    severity: high
    enforcement: enforced
"""


def _rules(organization):
    with tenant_scope(organization):
        for spec in parse_rules(OWNER_RULE):
            services.create_rule(organization, spec)


def _ci_token(organization, owner, scope="ci"):
    with tenant_scope(organization):
        account = tokens.create_service_account(
            organization, name=f"pipeline-{scope}", role="viewer", by=owner
        )
        _, secret = tokens.create_service_account_token(account, name="ci", scope=scope, by=owner)
    return secret


def _post(client, org, body, source="terraform", content_type="application/json"):
    return client.post(
        f"/api/v1/o/{org.slug}/policies/ci-check/?source={source}",
        body,
        content_type=content_type,
    )


def _plan_with_owner_in_default_tags(tmp_path: Path) -> Path:
    """The fixture's configuration with Owner added to the provider's default_tags, planned by
    terraform offline (regenerate.sh: local provider mirror, fake credentials)."""
    work = tmp_path / "terraform"
    shutil.copytree(FIXTURES, work)
    main = (work / "main.tf").read_text()
    assert 'ManagedBy  = "terraform"' in main
    (work / "main.tf").write_text(
        main.replace(
            'ManagedBy  = "terraform"', 'ManagedBy  = "terraform"\n      Owner = "platform"', 1
        )
    )
    out = tmp_path / "plan-with-owner.json"
    subprocess.run(["sh", str(work / "regenerate.sh"), str(out)], check=True, capture_output=True)  # noqa: S603, S607
    return out


@pytest.mark.django_db(transaction=True)
def test_the_client_fails_a_plan_without_owner_and_passes_once_default_tags_carry_it(
    live_server, org, owner, tmp_path, capsys
):
    _rules(org)
    secret = _ci_token(org, owner)
    args = ["check", "--url", live_server.url, "--org", org.slug, "--token", secret]
    junit = tmp_path / "tags.xml"
    assert cli.main([*args, str(PLAN), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "aws_instance.web" in out and "owner-required" in out
    assert 'name="owner-required"' in junit.read_text()
    fixed = _plan_with_owner_in_default_tags(tmp_path)
    assert cli.main([*args, str(fixed)]) == 0


@pytest.mark.django_db
def test_the_answer_names_the_violations_and_the_rules(org, owner):
    _rules(org)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {_ci_token(org, owner)}")
    answer = _post(client, org, PLAN.read_bytes()).json()
    assert answer["exit_code"] == 1
    # the organization's rule, and the advisory for tags known only after apply (the subnet)
    assert answer["rules"] == ["owner-required", "tags-unknown"]
    by_address = {r["address"]: r for r in answer["resources"]}
    assert [v["rule_id"] for v in by_address["aws_instance.web"]["violations"]] == [
        "owner-required"
    ]
    assert by_address["aws_sqs_queue.retired"]["checked"] is False  # a deletion


@pytest.mark.django_db
def test_bad_documents_are_400_naming_the_place(org, owner):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {_ci_token(org, owner)}")
    broken = json.loads(PLAN.read_text())
    broken["resource_changes"][1]["change"]["after"]["tags_all"] = ["not", "a", "map"]
    response = _post(client, org, json.dumps(broken))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["path"] == "resource_changes[1].change.after.tags_all"
    assert _post(client, org, b"{not json").status_code == 400
    assert _post(client, org, PLAN.read_bytes(), source="pulumi").status_code == 400
    template = b"Resources:\n  Web:\n    Type: AWS::EC2::Instance\n    Properties:\n      Tags: 7\n"
    refused = _post(client, org, template, "cloudformation", "application/yaml")
    assert refused.status_code == 400 and refused.json()["errors"][0]["path"]


@pytest.mark.django_db
def test_a_document_of_50_mib_is_413_before_it_is_read(org, owner):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {_ci_token(org, owner)}")
    response = client.post(
        f"/api/v1/o/{org.slug}/policies/ci-check/?source=terraform",
        b"{}",
        content_type="application/json",
        CONTENT_LENGTH=str(50 * 1024 * 1024),
    )
    assert response.status_code == 413


@pytest.mark.django_db
def test_token_scopes_and_organizations(org, other_org, owner, outsider):
    read = Client(HTTP_AUTHORIZATION=f"Bearer {_ci_token(org, owner, scope='read')}")
    assert _post(read, org, PLAN.read_bytes()).status_code == 403  # read cannot POST
    with tenant_scope(other_org):
        membership = Membership.objects.get(user=outsider)
        _, theirs = tokens.create_personal_token(membership, name="ci", scope="ci")
    foreign = Client(HTTP_AUTHORIZATION=f"Bearer {theirs}")
    assert _post(foreign, org, PLAN.read_bytes()).status_code == 404


GATE = Path(__file__).parent / "fixtures" / "terraform_gate"


@pytest.mark.django_db(transaction=True)
def test_the_client_gates_untagged_resources_by_their_provider_default_tags(
    live_server, org, owner, capsys
):
    # real plans (fixtures/terraform_gate): the same resources under a provider without
    # default tags, then with constant default tags carrying Owner
    _rules(org)
    args = ["check", "--url", live_server.url, "--org", org.slug, "--token", _ci_token(org, owner)]
    assert cli.main([*args, str(GATE / "no_defaults" / "plan.json")]) == 1
    out = capsys.readouterr().out
    assert "FAIL aws_sqs_queue.untagged: owner-required missing [Owner]" in out
    assert 'FAIL module.queues.aws_sqs_queue.this["jobs"]: owner-required' in out
    assert cli.main([*args, str(GATE / "constant_defaults" / "plan.json")]) == 0
    # an unchanged untagged queue fails unless only changes are judged
    assert cli.main([*args, str(GATE / "noop" / "plan.json")]) == 1
    assert cli.main([*args, "--changed-only", str(GATE / "noop" / "plan.json")]) == 0
    capsys.readouterr()
    # what is not a plan is refused before upload, saying what it is
    assert cli.main([*args, str(GATE / "no_defaults" / "plan-events.jsonl")]) == 2
    assert "event stream" in capsys.readouterr().err


@pytest.mark.django_db
def test_changed_only_is_a_parameter_of_the_endpoint(org, owner):
    _rules(org)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {_ci_token(org, owner)}")
    body = (GATE / "noop" / "plan.json").read_bytes()
    url = f"/api/v1/o/{org.slug}/policies/ci-check/?source=terraform"
    every = client.post(url, body, content_type="application/json").json()
    assert (every["exit_code"], every["passed"]) == (1, False)
    changed = client.post(url + "&changed_only=true", body, content_type="application/json")
    assert changed.json()["passed"] is True
    refused = client.post(url + "&changed_only=maybe", body, content_type="application/json")
    assert refused.status_code == 400


def _post_chunked(port: int, path: str, token: str, body: bytes) -> tuple[int, dict]:
    """A real chunked upload: no Content-Length, Transfer-Encoding: chunked, 64 KiB chunks."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    connection.request(
        "POST",
        path,
        body=chunks,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


@pytest.fixture
def gunicorn_portal():
    """The portal under gunicorn (as deployed), on the test database."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    database = settings.DATABASES["default"]
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tagsense.settings.test",
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
    )
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(  # noqa: S603
        [str(root / ".venv/bin/gunicorn"), "tagsense.wsgi:application", "-w", "1",
         "-b", f"127.0.0.1:{port}"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()[-3000:]
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_upload_is_read_under_gunicorn(gunicorn_portal, org, owner):
    _rules(org)
    token = _ci_token(org, owner)
    path = f"/api/v1/o/{org.slug}/policies/ci-check/?source=terraform"
    status, answer = _post_chunked(
        gunicorn_portal, path, token, (GATE / "no_defaults" / "plan.json").read_bytes()
    )
    assert status == 200, answer
    assert answer["passed"] is False
    assert answer["summary"]["resources"] == 14


@pytest.mark.django_db(transaction=True)
def test_a_chunked_upload_the_server_cannot_read_is_411_not_an_empty_document(
    live_server, org, owner
):
    # Django's development server (live_server) drops a body without Content-Length
    port = int(live_server.url.rsplit(":", 1)[1])
    path = f"/api/v1/o/{org.slug}/policies/ci-check/?source=terraform"
    status, answer = _post_chunked(port, path, _ci_token(org, owner), PLAN.read_bytes())
    assert status == 411
    assert "Content-Length" in answer["detail"]
