"""The demo's labelled, invented score history (demo/history.py) and the built-in frameworks
the demo estate enables (setup_demo_estate); `score_snapshot --demo-history` reaches the history
through the plug."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from demo import history
from demo.management.commands.setup_demo_estate import _frameworks_and_scores
from policies.models import Framework, ScoreSnapshot
from policies.scoring import scores
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.policies.test_frameworks import enable
from tests.policies.test_rules import make_resources

pytestmark = pytest.mark.django_db


def test_demo_history_is_only_for_the_demo_organization_and_labelled(org, admin, settings):
    make_resources(org, tags_list=[{"Environment": "prod"}])
    enable(org)
    with tenant_scope(org, actor=Actor.system("test")):
        scores.take_snapshot(org)
        with pytest.raises(history.NotTheDemo):
            history.seed_demo_history(org)
        settings.TAGSENSE_DEMO_ORG_SLUG = org.slug
        seeded = history.seed_demo_history(org, days=29)
        assert seeded > 0
        assert not ScoreSnapshot.objects.filter(source="demo", day=timezone.now().date()).exists()
    body = (
        client_for(admin)
        .get(f"/api/v1/o/{org.slug}/policies/trends/?kind=framework&key=soc2&days=30")
        .json()
    )
    assert len(body["points"]) == 30
    assert {p["source"] for p in body["points"][:-1]} == {"demo"}
    assert body["points"][-1]["source"] == "measured"
    page = client_for(admin).get(f"/o/{org.slug}/policies/frameworks/soc2/").content.decode()
    assert "includes demo data, not measured" in page
    with tenant_scope(org, actor=Actor.system("test")):
        yesterday = timezone.now().date() - timedelta(days=1)
        scores.take_snapshot(org, day=yesterday)  # a measured day replaces the demo one
        assert set(
            ScoreSnapshot.objects.filter(day=yesterday).values_list("source", flat=True)
        ) == {"measured"}


def test_the_demo_estate_enables_the_built_in_frameworks_with_scores_and_trends(org, settings):
    settings.TAGSENSE_DEMO_ORG_SLUG = org.slug
    make_resources(org, tags_list=[{"Environment": "prod", "Owner": "a@b.example"}, {}])
    with tenant_scope(org, actor=Actor.system("test")):
        summary = _frameworks_and_scores(org)
        assert set(Framework.objects.values_list("slug", flat=True)) == {
            "hipaa", "iso-27001-2022", "pci-dss-4.0", "soc2"
        }  # fmt: skip
        measured = ScoreSnapshot.objects.filter(source="measured", kind="framework")
        assert measured.count() == 4
        assert ScoreSnapshot.objects.filter(source="demo", kind="framework", key="soc2").count()
    assert "labelled demo history" in summary


def test_score_snapshot_demo_history_writes_the_demo_history_and_refuses_others(
    org, other_org, settings, capsys
):
    make_resources(org, tags_list=[{"Environment": "prod"}])
    enable(org)
    settings.TAGSENSE_DEMO_ORG_SLUG = org.slug
    call_command("score_snapshot", "--org", org.slug, "--demo-history")
    out = capsys.readouterr().out
    with tenant_scope(org):
        seeded = ScoreSnapshot.objects.filter(source="demo").count()
    assert seeded > 0
    assert f"{org.slug}: {seeded} rows of DEMO history" in out
    with pytest.raises(CommandError, match="demo history is only ever written for the demo"):
        call_command("score_snapshot", "--org", other_org.slug, "--demo-history")
