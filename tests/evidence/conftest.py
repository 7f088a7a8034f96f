"""Fixtures of the evidence package tests: an estate whose every member-written text begins like
a spreadsheet formula, and STAND-INS for the parts of issue 16 written on other branches.

The stand-ins replace the functions of evidence/sources.py only (the package's seams), inside a
test, with monkeypatch: the finding ledger (policies.history) read from today's Finding rows,
the versions in force from the version tables, the audit segment from the audit table, and
trivial OSCAL, PDF, manifest and signature writers that record what they were given. They let
these tests check what evidence.package owns (assembly, hashes, CSV neutralisation, streaming,
failure, progress, scope); the real sources are tested on their own branches, and the builder
against them once merged (the report says which).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from types import SimpleNamespace

import orjson
import pytest
from django.utils import timezone

from accounts.models import Membership
from audit.models import AuditEvent
from evidence import sources
from inventory import services as inventory_services
from inventory.models import AwsAccount, Resource, ScanRun, ScanUnit
from policies import exemptions, services
from policies.engine.spec import RuleSpec
from policies.models import AwsTagPolicyVersion, Control, Finding, Framework, RuleVersion
from tagsense.tenancy import context
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope

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


@pytest.fixture
def estate(org, owner, admin, editor, team):
    """Two accounts (one held by `team`), instances lacking their CostCenter tag whose found
    keys, names and tags are hostile, a rule and a framework whose titles are hostile, an
    approved exemption with a hostile justification, a failed scan unit with a hostile error,
    and an AWS tag policy version with a hostile name."""
    with tenant_scope(org):
        account = AwsAccount.objects.create(organization=org, account_id=ACCOUNT, name="prod")
        other = AwsAccount.objects.create(organization=org, account_id=OTHER_ACCOUNT, name="dev")
        inventory_services.grant_account(account, team)
        Resource.objects.bulk_create(
            [
                _resource(org, account, i, tags={payload: payload}, name=payload)
                for i, payload in enumerate(HOSTILE)
            ]
            + [_resource(org, other, 100 + i) for i in range(3)]
        )
        services.create_rule(
            org,
            RuleSpec(id="costcenter", title=HOSTILE[0], check="required_key", key="CostCenter"),
        )
        findings = Finding.objects.for_org(org).filter(account=account).order_by("id")
        for finding, payload in zip(findings, HOSTILE, strict=False):
            Finding.objects.filter(pk=finding.pk).update(found_key=payload)
        framework = services.create_framework(org, "Baseline", "BL-1 | Cost centres | costcenter")
        Control.objects.create(
            organization=org,
            framework=framework,
            control_id="BL-2",
            title=HOSTILE[3],
            rule_ids=["costcenter"],
            position=1,
        )
        exemption = exemptions.request(
            Membership.objects.get(user=editor),
            Finding.objects.for_org(org).filter(pk=findings[0].pk),
            justification=HOSTILE[1],
            expires_at=timezone.now() + timedelta(days=30),
        )
        with context.use(actor=Actor.for_user(admin)):
            exemptions.approve(exemption, Membership.objects.get(user=admin))
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
            error=HOSTILE[2], started_at=now - timedelta(hours=1),
            finished_at=now - timedelta(minutes=55),
        )  # fmt: skip
        AwsTagPolicyVersion.objects.create(
            organization=org, name=HOSTILE[4], version=1, change="create", document="{}",
            target_type="account", target=ACCOUNT, position=0, changed_by=HOSTILE[5],
        )  # fmt: skip
    return SimpleNamespace(
        account=account, other=other, framework=framework.slug, exemption=exemption
    )


class StandIns:
    """What the stand-ins were called with, for the tests to look at."""

    def __init__(self):
        self.calls: dict[str, list] = {}
        self.failing: list = []
        self.summary = None
        self.manifest_files: list = []

    def note(self, name, **kwargs):
        self.calls.setdefault(name, []).append(kwargs)


def _open_findings(organization, rule_ids, account_pks):
    findings = Finding.objects.for_org(organization).filter(
        status="open", rule__rule_id__in=rule_ids
    )
    if account_pks is not None:
        findings = findings.filter(account_id__in=account_pks)
    return findings.select_related("rule").order_by("id")


@pytest.fixture
def stand_ins(monkeypatch):
    """evidence.sources' functions replaced for one test (see the module's docstring)."""
    seen = StandIns()

    def findings_at(organization, at, *, rule_ids, account_pks):
        seen.note("findings_at", at=at, rule_ids=rule_ids, account_pks=account_pks)
        for f in _open_findings(organization, rule_ids, account_pks).iterator(chunk_size=2000):
            yield SimpleNamespace(
                finding_id=f.pk, rule_pk=f.rule_id, rule_id=f.rule.rule_id,
                rule_version=f.rule_version, resource_id=f.resource_id,
                account_pk=f.account_id, status="open", since=f.first_seen, kind=f.kind,
                found_key=f.found_key, severity=f.severity,
            )  # fmt: skip

    def changes_between(organization, start, end, *, rule_ids, account_pks):
        seen.note("changes_between", start=start, end=end, account_pks=account_pks)
        for f in _open_findings(organization, rule_ids, account_pks).iterator(chunk_size=2000):
            yield SimpleNamespace(
                at=f.first_seen, event="opened", from_status=None, to_status="open",
                finding_id=f.pk, rule_pk=f.rule_id, rule_id=f.rule.rule_id,
                rule_version=f.rule_version, resource_id=f.resource_id,
                account_pk=f.account_id, kind=f.kind, found_key=f.found_key,
                severity=f.severity, exemption_id=f.exemption_id,
            )  # fmt: skip

    def control_status_at(organization, control, at, *, account_pks):
        seen.note("control_status_at", control=control.control_id, account_pks=account_pks)
        open_ = _open_findings(organization, control.rule_ids, account_pks)
        count = open_.count()
        return SimpleNamespace(
            status="fail" if count else "pass",
            open_findings=count,
            failing_resources=open_.values("resource_id").distinct().count(),
            exempted_findings=Finding.objects.for_org(organization)
            .filter(status="exempted")
            .count(),
            rules_in_force=len(control.rule_ids),
        )

    def daily_control_states(organization, control, first_day, last_day, *, account_pks):
        days, day = [], first_day
        while day <= last_day:
            days.append((day, 3, 10, False))
            day += timedelta(days=1)
        return days

    def rule_versions_in_force(organization, start, end):
        return [
            SimpleNamespace(
                rule_id=v.rule_slug,
                version=v.version,
                change=v.change,
                active=v.active,
                spec=v.spec,
                changed_by=v.changed_by,
                valid_from=v.changed_at,
                valid_to=None,
            )  # fmt: skip
            for v in RuleVersion.objects.for_org(organization)
        ]

    def tag_policy_versions_in_force(organization, start, end):
        return [
            SimpleNamespace(
                name=v.name,
                version=v.version,
                change=v.change,
                target_type=v.target_type,
                target=v.target,
                position=v.position,
                document=v.document,
                changed_by=v.changed_by,
                valid_from=v.changed_at,
                valid_to=None,
            )  # fmt: skip
            for v in AwsTagPolicyVersion.objects.for_org(organization)
        ]

    def write_chain_segment(fp, organization_id, start, end):
        events = AuditEvent.objects.chain(organization_id).filter(
            created_at__gte=start, created_at__lte=end
        )
        count = 0
        for event in events.order_by("seq").iterator():
            fp.write(orjson.dumps({"seq": event.seq, "hash": event.hash}) + b"\n")
            count += 1
        return {"events": count}

    def write_assessment_results(fp, summary, failing):
        seen.summary = summary
        seen.failing = list(failing)
        fp.write(orjson.dumps({"stand-in": "oscal", "failing": len(seen.failing)}))

    def write_summary_pdf(fp, summary):
        fp.write(b"%PDF-1.7 stand-in\n")

    def manifest_bytes(header, files, audit_segment, chain_head, key):
        seen.manifest_files = list(files)
        return orjson.dumps(
            {
                "package": header.package_id,
                "files": [{"name": n, "size": s, "sha256": h} for n, s, h in files],
                "audit_segment": audit_segment,
                "chain_head": chain_head,
                "key": key.fingerprint,
            }
        )

    def signature_bytes(organization, manifest):
        return hashlib.sha256(manifest).digest()

    for name, function in {
        "findings_at": findings_at,
        "changes_between": changes_between,
        "control_status_at": control_status_at,
        "daily_control_states": daily_control_states,
        "rule_versions_in_force": rule_versions_in_force,
        "tag_policy_versions_in_force": tag_policy_versions_in_force,
        "write_chain_segment": write_chain_segment,
        "write_assessment_results": write_assessment_results,
        "write_summary_pdf": write_summary_pdf,
        "active_key": lambda organization: SimpleNamespace(fingerprint="SHA256:stand-in-key"),
        "manifest_bytes": manifest_bytes,
        "signature_bytes": signature_bytes,
    }.items():
        monkeypatch.setattr(sources, name, function)
    return seen


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
