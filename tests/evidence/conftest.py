"""Fixtures of the evidence package tests: a real estate with a history, built through the same
code real scans, evaluations and members use (no stand-in: the package builder reads the real
finding ledger, rule versions, audit chain, OSCAL and PDF writers, key and manifest), and whose
every member-written text begins like a spreadsheet formula.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from accounts.models import Membership
from inventory import services as inventory_services
from inventory.models import AwsAccount, Resource, ScanRun, ScanUnit
from policies import evaluation, exemptions, services
from policies.engine.spec import RuleSpec
from policies.models import AwsTagPolicyVersion, Control, Finding, Framework, Rule
from tagsense import clock
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.policies.test_rules import retag

# Text members and AWS users write, each beginning like a formula (tests/test_exports.py has
# the full list of starters and blanks; these are the ones the brief names, and a blank first).
HOSTILE = [
    "=cmd|' /C calc'!A0",
    '+HYPERLINK("http://evil.example")',
    "-2+3+cmd|' /C notepad'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\u00a0=cmd|' /C calc'!A0",
]
ACCOUNT = "111111111111"
OTHER_ACCOUNT = "222222222222"
COST = RuleSpec(id="costcenter", title=HOSTILE[0], check="required_key", key="CostCenter")


def _resource(org, account, i, *, tags=None, name=""):
    now = timezone.now()
    return Resource(
        organization=org,
        account=account,
        arn=f"arn:aws:ec2:eu-west-1:{account.account_id}:instance/i-{i:08d}",
        region="eu-west-1",
        resource_type="ec2:instance",
        resource_id=f"i-{i:08d}",
        name=name,
        tags=tags or {},
        fingerprint="x",
        first_seen=now,
        last_written=now,
    )


def days_ago(n: float) -> datetime:
    """Noon (UTC) `n` days before today: the estate's history is laid out in whole days, so a
    package of "the last 30 days" (from midnight 29 days ago) holds some of it and not all."""
    today = timezone.now().astimezone(UTC).date()
    return datetime.combine(today, time(12), tzinfo=UTC) - timedelta(days=n)


def _exempt(org, editor_m, admin_m, findings, justification, at, expires):
    """Requested by the editor and approved by the admin at `at`, as members do."""
    with clock.at(at):
        with tenant_scope(org, actor=Actor.for_user(editor_m.user)):
            exemption = exemptions.request(
                editor_m, findings, justification=justification, expires_at=expires
            )
        with tenant_scope(org, actor=Actor.for_user(admin_m.user)):
            exemptions.approve(exemption, admin_m)
    return exemption


def _evaluate(org, at):
    with clock.at(at), tenant_scope(org):
        evaluation.evaluate_organization(org)


@pytest.fixture
def estate(org, owner, admin, editor, team):
    """Two accounts (one held by `team`), ten instances lacking their CostCenter tag, and a
    history laid down day by day on tagsense.clock through the real services, each writing the
    finding ledger and the audit log:

    - 40 days ago: the rule (its title hostile) is created and evaluated: ten findings open;
      a custom framework with two controls (one title hostile) cites it; exemption A (old, its
      justification hostile) exempts the first finding until 20 days ago;
    - 19 days ago: an evaluation writes A's expiry down (exemption_expired, 20 days ago);
    - 15 days ago: the rule is edited (version 2, severity low): a rule version in the period;
    - 10 days ago: exemption B (justification hostile) exempts the same finding again, so the
      finding names B only, and A lives on in the ledger alone;
    - 5 days ago: the second instance gets its CostCenter tag; an evaluation resolves it;
    - now: a successful scan unit and a failed one (its error hostile, a no-break space
      first: text a member writes is stripped of it), and an AWS tag policy
      version (its name and author hostile)."""
    with tenant_scope(org):
        editor_m = Membership.objects.get(user=editor)
        admin_m = Membership.objects.get(user=admin)
        account = AwsAccount.objects.create(organization=org, account_id=ACCOUNT, name="prod")
        other = AwsAccount.objects.create(organization=org, account_id=OTHER_ACCOUNT, name="dev")
        inventory_services.grant_account(account, team)
        Resource.objects.bulk_create(
            [
                _resource(org, account, i, tags={f"Note{i}": payload}, name=payload)
                for i, payload in enumerate(HOSTILE)
            ]
            + [_resource(org, other, 100 + i) for i in range(3)]
        )
    with clock.at(days_ago(40)), tenant_scope(org, actor=Actor.for_user(owner)):
        services.create_rule(org, COST)
        framework = services.create_framework(org, "Baseline", "BL-1 | Cost centres | costcenter")
        Control.objects.create(
            organization=org,
            framework=framework,
            control_id="BL-2",
            title=HOSTILE[3],
            rule_ids=["costcenter"],
            position=1,
        )
    with tenant_scope(org):
        first = Finding.objects.for_org(org).filter(account=account).order_by("resource_id")[0]
        resolved = Resource.objects.for_org(org).filter(account=account).order_by("id")[1]

    def first_finding():
        return Finding.objects.for_org(org).filter(pk=first.pk)

    old = _exempt(
        org, editor_m, admin_m, first_finding(), HOSTILE[2], days_ago(40), expires=days_ago(20)
    )
    _evaluate(org, days_ago(19))
    with clock.at(days_ago(15)), tenant_scope(org, actor=Actor.for_user(owner)):
        services.update_rule(Rule.objects.get(rule_id="costcenter"), replace(COST, severity="low"))
    new = _exempt(
        org, editor_m, admin_m, first_finding(), HOSTILE[1], days_ago(10), expires=days_ago(-30)
    )
    with tenant_scope(org):
        retag(resolved, {"CostCenter": "cc-1"})  # as a scan stores new tags
    _evaluate(org, days_ago(5))
    with tenant_scope(org):
        scan = ScanRun.objects.create(organization=org, started_by="test", status="partial")
        now = timezone.now()
        ScanUnit.objects.create(
            organization=org, scan=scan, account=account, region="eu-west-1",
            resource_type="ec2:instance", status=ScanUnit.SUCCEEDED,
            started_at=now - timedelta(hours=1), finished_at=now - timedelta(minutes=50),
        )  # fmt: skip
        ScanUnit.objects.create(
            organization=org, scan=scan, account=other, region="eu-west-1",
            resource_type="ec2:instance", status=ScanUnit.FAILED, error_code="AccessDenied",
            error=HOSTILE[6], started_at=now - timedelta(hours=1),
            finished_at=now - timedelta(minutes=55),
        )  # fmt: skip
        AwsTagPolicyVersion.objects.create(
            organization=org, name=HOSTILE[4], version=1, change="create", document="{}",
            target_type="account", target=ACCOUNT, position=0, changed_by=HOSTILE[5],
        )  # fmt: skip
    return SimpleNamespace(
        account=account,
        other=other,
        framework=framework.slug,
        old_exemption=old,
        exemption=new,
        first_finding=first.pk,
        resolved_resource=resolved.pk,
    )


@pytest.fixture
def evidence_root(settings, tmp_path):
    """Packages of this test in a folder of its own."""
    settings.EVIDENCE_ROOT = tmp_path / "evidence"
    return settings.EVIDENCE_ROOT


@pytest.fixture
def theirs(other_org, other_team):
    """The other organization's team, AWS account and framework, for scopes that name them."""
    with tenant_scope(other_org):
        account = AwsAccount.objects.create(organization=other_org, account_id="999999999999")
        Framework.objects.create(organization=other_org, slug="theirs", name="Theirs")
    return SimpleNamespace(team=other_team.slug, account=account.account_id, framework="theirs")
