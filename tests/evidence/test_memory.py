"""Memory does not grow with the estate: the builder's peak (tracemalloc) for 50,000 open
findings stays where it is for 5,000. A builder that held the rows (a list, a JSON document
built in memory) would need tens of megabytes more at 50,000."""

from __future__ import annotations

import tracemalloc
import zipfile

import pytest
from django.utils import timezone

from evidence import package, services
from inventory.models import AwsAccount, Resource
from policies import services as policy_services
from policies.engine.spec import RuleSpec
from policies.models import Control, Finding, FindingEvent, Framework, Rule
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


def _add(org, account, rule, start, count):
    """`count` instances missing their CostCenter tag, each with its open finding and the
    ledger's "opened" row for it, as the evaluation writes them (set-based, in bulk here)."""
    now = timezone.now()
    resources = Resource.objects.bulk_create(
        [
            Resource(
                organization=org,
                account=account,
                region="eu-west-1",
                arn=f"arn:aws:ec2:eu-west-1:{account.account_id}:instance/i-{i:012d}",
                resource_type="ec2:instance",
                resource_id=f"i-{i:012d}",
                name=f"web-{i}",
                tags={"Owner": "team-a"},
                fingerprint="x",
                first_seen=now,
                last_written=now,
            )  # fmt: skip
            for i in range(start, start + count)
        ],
        batch_size=5000,
    )
    findings = Finding.objects.bulk_create(
        [
            Finding(
                organization=org,
                rule=rule,
                resource=r,
                account=account,
                rule_version=1,
                status="open",
                kind="missing",
                found_key="CostCenter",
                severity="high",
                enforcement="report",
                first_seen=now,
                last_seen=now,
            )  # fmt: skip
            for r in resources
        ],
        batch_size=5000,
    )
    FindingEvent.objects.bulk_create(
        [
            FindingEvent(
                organization=org,
                finding_id=f.pk,
                rule_pk=rule.pk,
                rule_slug=rule.rule_id,
                rule_version=1,
                resource_id=f.resource_id,
                account_id=account.pk,
                kind="missing",
                found_key="CostCenter",
                severity="high",
                event="opened",
                from_status="",
                to_status="open",
                open_delta=1,
                exempt_delta=0,
                at=now,
            )  # fmt: skip
            for f in findings
        ],
        batch_size=5000,
    )


def _subjects(export) -> int:
    with zipfile.ZipFile(services.package_path(export)) as zf:
        return zf.read("assessment-results.json").count(b'"subject-uuid"')


def _peak(export) -> int:
    tracemalloc.start()
    try:
        package.build(export, lambda percent, stage: None)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_building_a_package_of_50000_findings_takes_no_more_memory_than_5000(
    org, auditor, evidence_root
):
    with tenant_scope(org):
        rule = policy_services.create_rule(
            org, RuleSpec(id="costcenter", title="Cost", check="required_key", key="CostCenter")
        )
        account = AwsAccount.objects.create(organization=org, account_id="111111111111")
        framework = Framework.objects.create(organization=org, slug="baseline", name="Baseline")
        Control.objects.create(
            organization=org, framework=framework, control_id="BL-1", title="Cost centres",
            rule_ids=["costcenter"],
        )  # fmt: skip
        rule = Rule.objects.get(pk=rule.pk)
        _add(org, account, rule, 0, 5_000)

    def new_export():
        with tenant_scope(org):
            return services.request_export(
                org,
                scope={"frameworks": ["baseline"]},
                period_start=timezone.now().date(),
                period_end=timezone.now().date(),
                actor=Actor.for_user(auditor),
            )

    first = new_export()
    small = _peak(first)
    with tenant_scope(org):
        _add(org, account, rule, 5_000, 45_000)
    export = new_export()
    large = _peak(export)
    # Both packages hold every finding, in their CSV and as OSCAL subjects.
    assert [_subjects(first), _subjects(export)] == [5_000, 50_000]
    with zipfile.ZipFile(services.package_path(export)) as zf:
        csv_lines = sum(1 for _ in zf.open("findings-open-at-end.csv"))
        assert zf.getinfo("findings-open-at-end.json").file_size > 50_000 * 200
    assert csv_lines == 50_001
    # Flat: ten times the findings, the same peak give or take a few megabytes of the
    # database driver's and allocator's noise; and well under what holding the rows would take.
    assert large - small < 4 * MIB, (small, large)
    assert large < 32 * MIB, large
