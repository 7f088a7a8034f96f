"""Resource costs: the import from Cost Explorer (moto with injected results, reached through
each account's assumed role), its audit event, the command and task. The demo's labelled costs
are tested in tests/demo/test_costs.py."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from moto.ce.models import ce_backends

from audit.models import AuditEvent
from inventory import costs
from inventory.models import AwsAccount, Resource, ResourceCost
from inventory.tasks import import_all_costs
from tagsense.celery import app
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.inventory.conftest import make_account

pytestmark = pytest.mark.django_db

MEMBER = "111111111111"
OTHER_MEMBER = "222222222222"
TODAY = date(2026, 11, 20)
EC2 = "Amazon Elastic Compute Cloud - Compute"


def inject(account_id: str, *results: dict) -> None:
    """Queue Cost Explorer answers for `account_id` through moto's documented API."""
    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results",
        json={"account_id": account_id, "results": list(results)},
        timeout=10,
    )
    assert response.status_code == 201


def answer(days: dict[date, dict[str, str]]) -> dict:
    """A GetCostAndUsageWithResources answer: {day: {resource id: amount}}, one result a day."""
    return {
        "ResultsByTime": [
            {
                "TimePeriod": {
                    "Start": day.isoformat(),
                    "End": (day + timedelta(days=1)).isoformat(),
                },
                "Total": {},
                "Groups": [
                    {
                        "Keys": [resource_id],
                        "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}},
                    }
                    for resource_id, amount in groups.items()
                ],
                "Estimated": False,
            }
            for day, groups in days.items()
        ],
        "DimensionValueAttributes": [],
    }


def resource(organization, account, resource_type, resource_id, arn=None):
    now = timezone.now()
    with tenant_scope(organization):
        return Resource.objects.create(
            organization=organization,
            account=account,
            region="eu-west-1",
            resource_type=resource_type,
            resource_id=resource_id,
            arn=arn or f"arn:aws:ec2:eu-west-1:{account.account_id}:instance/{resource_id}",
            fingerprint="x",
            first_seen=now,
            last_written=now,
        )


def rows_of(organization, **filters):
    with tenant_scope(organization):
        return list(ResourceCost.objects.for_org(organization).filter(**filters))


def run_import(organization, today=TODAY, **kwargs):
    with tenant_scope(organization):
        return costs.import_costs(organization, actor=Actor.system("test"), today=today, **kwargs)


def test_import_stores_each_resources_daily_cost_linked_to_the_inventory(org, aws_env):

    account = make_account(org, MEMBER)
    instance = resource(org, account, "ec2:instance", "i-0aaa")
    bucket_arn = "arn:aws:s3:::acme-logs"
    bucket = resource(org, account, "s3:bucket", "acme-logs", arn=bucket_arn)
    day1, day2 = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
    inject(
        MEMBER,
        answer(
            {
                day1: {"i-0aaa": "1.5000000000", bucket_arn: "0.25", "i-0gone": "3"},
                day2: {"i-0aaa": "1.75"},
            }
        ),
    )

    result = run_import(org)

    assert result["rows"] == 4 and result["linked"] == 3 and result["failed"] == []
    assert result["amount"] == "6.50" and result["accounts"] == 1
    rows = {(r.cost_resource_id, r.period_start): r for r in rows_of(org)}
    assert rows[("i-0aaa", day1)].amount == Decimal("1.5")
    assert rows[("i-0aaa", day1)].resource_id == instance.pk
    assert rows[("i-0aaa", day1)].arn == instance.arn
    assert rows[("i-0aaa", day1)].period_end == day2
    assert rows[("i-0aaa", day2)].amount == Decimal("1.75")
    assert rows[(bucket_arn, day1)].resource_id == bucket.pk  # an ARN names its resource
    gone = rows[("i-0gone", day1)]  # billed, not (or no longer) in the inventory
    assert gone.resource_id is None and gone.arn == "" and gone.amount == Decimal(3)
    assert {r.source for r in rows.values()} == {"cost_explorer"}
    assert {r.service for r in rows.values()} == {EC2}

    # What reached moto, through the account's assumed role: the request AWS documents.
    [body] = ce_backends[MEMBER]["aws"].cost_usage_results
    request = json.loads(body)
    assert request["TimePeriod"] == {"Start": "2026-11-06", "End": "2026-11-20"}
    assert request["Granularity"] == "DAILY"
    assert request["GroupBy"] == [{"Type": "DIMENSION", "Key": "RESOURCE_ID"}]
    assert request["Filter"] == {
        "And": [
            {"Dimensions": {"Key": "SERVICE", "Values": [EC2]}},
            {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [MEMBER]}},
        ]
    }

    with tenant_scope(org):
        [event] = AuditEvent.objects.filter(action="cost.import")
    assert event.actor_label == "test"
    assert event.data["rows"] == 4 and event.data["amount"] == "6.50"
    assert event.data["period"] == ["2026-11-06", "2026-11-20"]
    assert event.data["api_calls"] == 1


def test_a_later_import_replaces_the_days_it_covers_and_the_days_demo_rows(org, aws_env):
    account = make_account(org, MEMBER)
    resource(org, account, "ec2:instance", "i-0aaa")
    day = TODAY - timedelta(days=2)
    inject(MEMBER, answer({day: {"i-0aaa": "1.50", "i-0old": "9"}}))
    run_import(org)
    with tenant_scope(org):  # a demo row of the same account and day (as the demo writes them)
        ResourceCost.objects.create(
            organization=org,
            account=account,
            cost_resource_id="i-0demo",
            service=EC2,
            period_start=day,
            period_end=day + timedelta(days=1),
            amount=Decimal(5),
            source=ResourceCost.DEMO,
            imported_at=timezone.now(),
        )
    # The next day's import: a new window, so moto takes the next injected answer.
    inject(MEMBER, answer({day: {"i-0aaa": "2.00"}}))

    run_import(org, today=TODAY + timedelta(days=1))

    assert [(r.cost_resource_id, r.amount, r.source) for r in rows_of(org)] == [
        ("i-0aaa", Decimal(2), "cost_explorer")
    ]


def test_an_account_whose_query_fails_keeps_its_costs_and_is_reported(org, aws_env):
    good = make_account(org, MEMBER)
    bad = make_account(org, OTHER_MEMBER)
    day = TODAY - timedelta(days=1)
    inject(MEMBER, answer({day: {"i-0aaa": "1"}}))
    inject(OTHER_MEMBER, answer({day: {"i-0bbb": "2"}}))
    run_import(org)
    # STS refuses an external id shorter than 2 characters: botocore stops the call.
    with tenant_scope(org):
        AwsAccount.objects.filter(pk=bad.pk).update(external_id="x")
    inject(MEMBER, answer({day: {"i-0aaa": "4"}}))

    result = run_import(org, today=TODAY + timedelta(days=1))

    assert result["failed"] == [[OTHER_MEMBER, "ParamValidationError"]]
    assert result["accounts"] == 1
    amounts = {(r.account_id, r.cost_resource_id): r.amount for r in rows_of(org)}
    assert amounts == {(good.pk, "i-0aaa"): Decimal(4), (bad.pk, "i-0bbb"): Decimal(2)}
    with tenant_scope(org):
        event = AuditEvent.objects.filter(action="cost.import").order_by("-seq").first()
    assert event.data["failed"] == [[OTHER_MEMBER, "ParamValidationError"]]
    assert "external" not in json.dumps(event.data).lower()


def test_another_organizations_import_never_touches_ours(org, other_org, aws_env):
    mine = make_account(org, MEMBER)
    theirs = make_account(other_org, MEMBER)  # the same AWS account, registered twice
    day = TODAY - timedelta(days=1)
    inject(MEMBER, answer({day: {"i-0aaa": "1"}}))
    run_import(org)
    run_import(other_org)  # the same request: moto answers the same
    assert [r.account_id for r in rows_of(org)] == [mine.pk]
    assert [r.account_id for r in rows_of(other_org)] == [theirs.pk]
    with tenant_scope(org):  # row-level security: only our rows, whatever the filter says
        assert set(ResourceCost.objects.values_list("organization_id", flat=True)) == {org.pk}


def test_no_enabled_account_is_an_error_and_records_nothing(org, aws_env):
    with pytest.raises(ValueError, match="no enabled AWS account"):
        run_import(org)
    with tenant_scope(org):
        assert not AuditEvent.objects.filter(action="cost.import").exists()


def test_the_command_and_the_task_import_and_the_daily_beat_is_off_until_enabled(org, aws_env):

    make_account(org, MEMBER)
    today = timezone.now().date()
    inject(MEMBER, answer({today - timedelta(days=1): {"i-0aaa": "1.25"}}))
    out = StringIO()
    call_command("import_costs", "--org", org.slug, stdout=out)
    assert "1 cost rows for 1 accounts" in out.getvalue()
    assert "1.25 USD" in out.getvalue()

    # The daily fan-out: one inventory.import_costs task per organization with an account,
    # carrying the organization (eager Celery, the real task code).
    app.conf.task_always_eager = True
    try:
        assert import_all_costs.apply().get() == 1
    finally:
        app.conf.task_always_eager = False
    with tenant_scope(org):
        events = list(AuditEvent.objects.filter(action="cost.import").order_by("seq"))
        assert ResourceCost.objects.get().amount == Decimal("1.25")
    assert [e.actor_label for e in events] == ["import_costs", "inventory.import_all_costs"]

    beat = PeriodicTask.objects.get(task="inventory.import_all_costs")
    assert beat.enabled is False and beat.interval.period == "days"
