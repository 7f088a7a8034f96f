"""End to end against moto: a scan evaluates the organization's rules over what it touched."""

import pytest

from audit.models import AuditEvent
from policies import services
from policies.engine.spec import RuleSpec, Scope
from policies.models import Finding
from tagsense.tenancy.db import tenant_scope
from tests.inventory.test_scan_pipeline import _home, _scan, estate  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

OWNER = RuleSpec(
    id="owner-required",
    title="Owner",
    check="required_key",
    key="Owner",
    scope=Scope(resource_types=("ec2:instance",)),
)


def _findings(org):
    with tenant_scope(org):
        return {
            f.resource.resource_id: (f.kind, f.found_key, f.status)
            for f in Finding.objects.select_related("resource")
            if f.resource.resource_type == "ec2:instance"
        }


@pytest.fixture
def scan(django_capture_on_commit_callbacks, celery_eager):
    """A scan as the workers run it: once it has committed, policies' task evaluates what it
    touched (eager Celery here)."""

    def run(org, **scope):
        with django_capture_on_commit_callbacks(execute=True):
            return _scan(org, **scope)

    return run


def test_scans_open_and_resolve_findings(org, other_org, estate, scan):  # noqa: F811
    home, member, ids = estate
    with tenant_scope(org):
        services.create_rule(org, OWNER)
    scan(org, types=("ec2:instance",))
    [untagged] = ids["home_untagged"]
    [member_instance] = ids["member_tagged"]
    assert _findings(org) == {
        untagged: ("missing", None, "open"),
        member_instance: ("wrong_case", "owner", "open"),
    }
    with tenant_scope(org):
        [event] = AuditEvent.objects.filter(action="policy.evaluate")
    assert event.data["trigger"] == "scan" and event.data["new"] == 2

    changed, removed = ids["home_tagged"]
    _home("us-east-1").create_tags(Resources=[untagged], Tags=[{"Key": "Owner", "Value": "c"}])
    _home("eu-west-1").delete_tags(Resources=[changed], Tags=[{"Key": "Owner"}])
    _home("eu-west-1").terminate_instances(InstanceIds=[removed])
    scan(org, types=("ec2:instance",))
    assert _findings(org) == {
        untagged: ("missing", None, "resolved"),
        member_instance: ("wrong_case", "owner", "open"),  # untouched by the scan: unchanged
        changed: ("missing", None, "open"),
    }
    with tenant_scope(org):
        last = AuditEvent.objects.filter(action="policy.evaluate").order_by("-seq").first()
    assert (last.data["new"], last.data["resolved"]) == (1, 1)
    with tenant_scope(other_org):
        assert not Finding.objects.exists()
