"""Rules in the portal and as code: versions, audit, import/export, problems, live preview."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from accounts.models import Membership
from audit.models import AuditEvent
from inventory import services as inventory_services
from inventory.models import AwsAccount, Resource
from inventory.scanners.base import ResourceRecord
from inventory.storage import fingerprint
from policies import services
from policies.engine.spec import parse_rules
from policies.models import Rule, RuleVersion
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.factories import TeamMembershipFactory

pytestmark = pytest.mark.django_db

GOOD = """version: 1
rules:
  - id: owner-required
    title: Every resource names its Owner
    check: required_key
    key: Owner
    aliases: [owner_email]
  - id: env-values
    title: Environment values
    check: allowed_values
    key: Environment
    values: {list: [prod, dev]}
"""


def api(org, path=""):
    return f"/api/v1/o/{org.slug}/policies/{path}"


def make_resources(organization, account_id="111111111111", tags_list=()):

    now = timezone.now()
    with tenant_scope(organization):
        account, _ = AwsAccount.objects.get_or_create(
            organization=organization, account_id=account_id
        )
        return [
            Resource.objects.create(
                organization=organization,
                account=account,
                arn=f"arn:aws:ec2:eu-west-1:{account_id}:instance/i-{uuid.uuid4().hex}",
                region="eu-west-1",
                resource_type="ec2:instance",
                resource_id=f"i-{i}",
                name=f"{organization.slug}-{i}",
                tags=tags,
                fingerprint="x",
                first_seen=now,
                last_written=now,
            )
            for i, tags in enumerate(tags_list)
        ]


def _fingerprint(resource) -> str:

    return fingerprint(
        ResourceRecord(
            arn=resource.arn,
            resource_type=resource.resource_type,
            resource_id=resource.resource_id,
            region=resource.region,
            name=resource.name,
            tags=resource.tags,
            config=resource.config,
        )
    )


def retag(resource, tags) -> None:
    """Give a resource new tags as a scan would (inventory.storage): tags and fingerprint."""

    resource.tags = tags
    Resource.objects.filter(pk=resource.pk).update(tags=tags, fingerprint=_fingerprint(resource))


def rules_of(organization):
    with tenant_scope(organization):
        return {r.rule_id: r for r in Rule.objects.for_org(organization)}


def test_create_update_keep_versions_and_audit(org, admin):
    client = client_for(admin)
    spec = {"id": "owner-required", "title": "Owner", "check": "required_key", "key": "Owner"}
    created = client.post(api(org, "rules/"), {"spec": spec}, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["version"] == 1
    assert "key: Owner" in created.json()["yaml"]
    changed = client.put(
        api(org, "rules/owner-required/"),
        {"spec": {**spec, "severity": "high"}},
        content_type="application/json",
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert changed.json()["spec"]["severity"] == "high"
    versions = client.get(api(org, "rules/owner-required/versions/")).json()["results"]
    assert [(v["version"], v["change"], v["spec"]["severity"]) for v in versions] == [
        (2, "update", "high"),
        (1, "create", "medium"),
    ]
    assert client.delete(api(org, "rules/owner-required/")).status_code == 204
    assert client.get(api(org, "rules/owner-required/")).status_code == 404
    versions = client.get(api(org, "rules/owner-required/versions/")).json()["results"]
    assert versions[0]["change"] == "delete" and len(versions) == 3
    with tenant_scope(org):
        actions = list(
            AuditEvent.objects.filter(action__startswith="policy.")
            .order_by("seq")
            .values_list("action", flat=True)
        )
    assert actions == ["policy.rule_create", "policy.rule_update", "policy.rule_delete"]


def test_unchanged_update_makes_no_version(org, admin):
    client = client_for(admin)
    client.post(api(org, "import/"), {"yaml": GOOD}, content_type="application/json")
    again = client.post(api(org, "import/"), {"yaml": GOOD}, content_type="application/json")
    assert again.json() == {"mode": "merge", "created": [], "updated": [], "deleted": []}
    with tenant_scope(org):
        assert RuleVersion.objects.count() == 2


@pytest.mark.parametrize(
    ("text", "where", "line"),
    [
        ("version: 1\nrules:\n  - id: [unclosed\n", "file", 4),
        (
            GOOD
            + "  - {id: cc, title: c, check: allowed_values, key: C, values: {regex: '(a+)+'}}\n",
            "rules[2] (cc).values.regex",
            13,
        ),
        (
            GOOD + "  - id: t\n    title: t\n    check: required_key\n    key: K\n"
            "    scope: {resource_types: [ec2:teapot]}\n",
            "rules[2] (t).scope.resource_types[0]",
            17,
        ),
        (
            GOOD + "  - id: x\n    title: x\n    check: required_key\n    kye: K\n",
            "rules[2] (x).kye",
            16,
        ),
        ("version: 1\nrules: {id: x}\n", "rules", 2),
    ],
    ids=["malformed", "regex", "unknown-type", "unknown-field", "structure"],
)
def test_a_bad_file_is_a_located_problem_and_saves_nothing(org, admin, text, where, line):
    client = client_for(admin)
    response = client.post(
        api(org, "import/"), {"yaml": text, "mode": "replace"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert any(e["where"] == where and e["line"] == line for e in errors), errors
    assert rules_of(org) == {}
    with tenant_scope(org):
        assert not AuditEvent.objects.filter(action__startswith="policy.").exists()
    page = client.post(f"/o/{org.slug}/policies/import/", {"yaml": text, "mode": "merge"})
    assert page.status_code == 400 and where in page.content.decode()
    assert rules_of(org) == {}


def test_import_merge_keeps_others_and_replace_deletes_them(org, admin):
    client = client_for(admin)
    client.post(api(org, "import/"), {"yaml": GOOD}, content_type="application/json")
    only_owner = GOOD.split("  - id: env-values")[0].replace("[owner_email]", "[Contact]")
    merged = client.post(
        api(org, "import/"), {"yaml": only_owner}, content_type="application/json"
    ).json()
    assert merged["updated"] == ["owner-required"] and merged["deleted"] == []
    assert set(rules_of(org)) == {"owner-required", "env-values"}
    replaced = client.post(
        api(org, "import/"),
        {"yaml": only_owner, "mode": "replace"},
        content_type="application/json",
    ).json()
    assert replaced["deleted"] == ["env-values"]
    assert set(rules_of(org)) == {"owner-required"}


def test_export_reads_back_to_the_same_rules(org, admin, viewer):
    client_for(admin).post(api(org, "import/"), {"yaml": GOOD}, content_type="application/json")
    for path in (api(org, "export/"), f"/o/{org.slug}/policies/export.yaml"):
        text = client_for(viewer).get(path).content.decode()
        assert parse_rules(text) == sorted(parse_rules(GOOD), key=lambda r: r.id)


def test_viewers_read_but_cannot_write(org, admin, viewer):
    client_for(admin).post(api(org, "import/"), {"yaml": GOOD}, content_type="application/json")
    client = client_for(viewer)
    assert client.get(api(org, "rules/")).json()["count"] == 2
    page = client.get(f"/o/{org.slug}/policies/rules/owner-required/").content.decode()
    assert "owner_email" in page and "<textarea" not in page
    assert client.post(api(org, "import/"), {"yaml": GOOD}).status_code == 403
    assert client.delete(api(org, "rules/owner-required/")).status_code == 403
    assert set(rules_of(org)) == {"owner-required", "env-values"}


def test_another_organizations_rules_are_404(org, other_org, admin, outsider):
    client_for(outsider).post(
        api(other_org, "import/"), {"yaml": GOOD}, content_type="application/json"
    )
    client = client_for(admin)
    assert client.get(api(org, "rules/")).json()["count"] == 0
    for path in ("rules/owner-required/", "rules/owner-required/versions/"):
        assert client.get(api(org, path)).status_code == 404
    assert client.get(f"/o/{org.slug}/policies/rules/owner-required/").status_code == 404
    assert client.post(f"/o/{org.slug}/policies/rules/owner-required/delete/").status_code == 404
    assert set(rules_of(other_org)) == {"owner-required", "env-values"}


def test_live_preview_counts_only_this_organizations_visible_resources(org, other_org, admin):
    make_resources(org, tags_list=[{}, {"owner": "x"}, {"Owner": "a"}] + [{}] * 25)
    make_resources(other_org, tags_list=[{}] * 5)
    client = client_for(admin)
    body = {"yaml": GOOD.split("  - id: env-values")[0]}
    preview = client.post(api(org, "preview/"), body, content_type="application/json").json()
    assert preview["count"] == 27
    assert len(preview["sample"]) == 20
    assert {s["kind"] for s in preview["sample"]} == {"missing", "wrong_case"}
    fragment = client.post(
        f"/o/{org.slug}/policies/preview/", body, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "would flag 27 resources" in fragment and "<html" not in fragment
    bad = client.post(
        f"/o/{org.slug}/policies/preview/", {"yaml": "version: 1\nrules: [{id: X}]\n"}
    ).content.decode()
    assert "rules[0]" in bad
    assert rules_of(org) == {}  # a preview saves nothing


def test_preview_is_limited_to_the_members_teams(org, admin, editor, team):
    """An editor's preview counts only resources of accounts their team holds."""

    make_resources(org, "111111111111", [{}, {}])
    make_resources(org, "222222222222", [{}] * 3)
    TeamMembershipFactory(organization=org, team=team, user=editor)
    with tenant_scope(org):
        inventory_services.grant_account(AwsAccount.objects.get(account_id="111111111111"), team)

        editor_m = Membership.objects.get(user=editor)
        admin_m = Membership.objects.get(user=admin)
        spec = parse_rules(GOOD)[0]
        assert services.preview(editor_m, spec)["count"] == 2
        assert services.preview(admin_m, spec)["count"] == 5


def test_the_editor_saves_and_shows_problems_with_lines(org, admin):
    client = client_for(admin)
    page = client.get(f"/o/{org.slug}/policies/rules/new/").content.decode()
    assert 'hx-post="/o/acme/policies/preview/"' in page and "<script>" not in page
    bad = client.post(
        f"/o/{org.slug}/policies/rules/new/",
        {"yaml": "version: 1\nrules:\n  - id: a\n    title: a\n    check: nope\n"},
    )
    assert bad.status_code == 400 and "line 5" in bad.content.decode()
    assert rules_of(org) == {}
    ok = client.post(
        f"/o/{org.slug}/policies/rules/new/",
        {"yaml": GOOD.split("  - id: env-values")[0], "active": "on"},
    )
    assert ok.status_code == 302
    assert rules_of(org)["owner-required"].active
