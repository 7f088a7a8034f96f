"""The demo's past is simulated through the real code (demo/simulation.py), never invented.

One moto_server with a small demo estate for the module; the demo is set up as `make run` does
(setup_demo, setup_demo_estate) and every check reads what was recorded: one backdated scan a
day, times in the past and in order, every day's score recomputed from the recorded tag history
with the reference engine (an invented point would differ), the present equal to what the
scanners read from moto now, no "demo" point in the trends API, no duplicate history on a
second start.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Organization, User
from demo import simulation
from demo.estate import seed_estate, start_moto_server, stop_moto_server
from demo.management.commands import setup_demo_estate
from demo.management.commands.setup_demo import DEMO_ADMIN
from demo.management.commands.setup_demo_estate import _seed_random
from inventory import runner
from inventory.models import Resource, ScanRun, ScanUnit, TagEvent
from inventory.services import teams_by_account
from policies.engine.reference import ResourceView, applies, evaluate_resource
from policies.models import Rule, RuleVersion, ScoreSnapshot, spec_from_dict
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for

RESOURCES = 150


@pytest.fixture(scope="module")
def endpoint():
    with pytest.MonkeyPatch.context() as patch:
        for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(key, raising=False)
        proc, url = start_moto_server()
        patch.setenv("AWS_ENDPOINT_URL", url)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        try:
            _seed_random(url, 7)  # moto's ids, so the story (drawn from ARNs) is the same
            seed_estate(url, resources=RESOURCES)
            yield url
        finally:
            stop_moto_server(proc)


def _tags_at(resource, events, moment):
    """The resource's tags at `moment` from its recorded history: its present tags with every
    later change undone; None when it did not exist then."""
    if resource.first_seen > moment or (resource.deleted_at and resource.deleted_at <= moment):
        return None
    tags = dict(resource.tags)
    for event in sorted(events, key=lambda e: (e.seen_at, e.pk), reverse=True):
        if event.seen_at <= moment:
            break
        for change in event.changes:
            if change["old"] is None:
                tags.pop(change["key"], None)
            else:
                tags[change["key"]] = change["old"]
    return tags


def _rules_in_force(organization, day):
    """The active rules' specs on simulated `day`: environment-values' recorded versions, the
    second in force from the day it was loosened until the day it was reverted."""
    specs = {r.rule_id: r.rule_spec for r in Rule.objects.for_org(organization) if r.active}
    versions = list(
        RuleVersion.objects.for_org(organization)
        .filter(rule_slug=simulation.EDITED_RULE)
        .order_by("version")
    )
    assert [v.version for v in versions] == [1, 2, 3]
    if simulation.LOOSEN_DAY <= day < simulation.REVERT_DAY:
        specs[simulation.EDITED_RULE] = spec_from_dict(versions[1].spec)
    else:
        specs[simulation.EDITED_RULE] = spec_from_dict(versions[0].spec)
    return specs


def _score_from_history(organization, resources, events, teams, day, moment):
    """compliant / in scope over every active rule, recomputed at `moment` from the recorded
    tags (the reference engine, not the SQL the snapshots came from)."""
    specs = _rules_in_force(organization, day)
    in_scope = compliant = 0
    for resource in resources:
        tags = _tags_at(resource, events[resource.pk], moment)
        if tags is None:
            continue
        aws_id = resource.account.account_id
        view = ResourceView(
            resource.resource_type, tags, aws_id, resource.region, frozenset(teams.get(aws_id, ()))
        )
        applying = [spec for spec in specs.values() if applies(spec, view)]
        if applying:
            in_scope += 1
            compliant += not any(evaluate_resource(spec, view) for spec in applying)
    return in_scope, compliant


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_demo_past_is_simulated_through_the_real_code(endpoint, settings, monkeypatch):
    said = []  # what `make run`'s starting page says meanwhile (tagsense.starting)
    monkeypatch.setattr(setup_demo_estate, "_starting_page", said.append)
    call_command("setup_demo")
    call_command("setup_demo_estate", endpoint=endpoint, resources=RESOURCES, workers=2)
    assert said[0].startswith("Reading the estate from AWS (moto)")
    assert [int(text.split(": day ")[1].split()[0]) for text in said[1:-1]] == list(
        range(2, simulation.DAYS + 1)
    )
    assert said[-1] == "Storing today's scan of the estate…"
    now = timezone.now()
    today = now.date()
    organization = Organization.objects.get(slug=settings.TAGSENSE_DEMO_ORG_SLUG)
    with tenant_scope(organization):
        scans = list(ScanRun.objects.for_org(organization).order_by("created_at"))
        simulated = [s for s in scans if s.trigger == simulation.TRIGGER]
        present = [s for s in scans if s.trigger != simulation.TRIGGER]
        # One backdated scan a day for the 89 days before today, then today's real scan.
        assert [s.created_at.date() for s in simulated] == [
            today - timedelta(days=simulation.DAYS - d) for d in range(simulation.DAYS)
        ]
        assert {s.started_by for s in simulated} == {"demo.simulation"}
        assert len(present) == 1 and present[0].created_at.date() == today
        assert present[0].status == ScanRun.SUCCEEDED
        # Times: in the past, in order; nothing backdated after a present-day row.
        previous = None
        for scan in scans:
            assert scan.created_at <= scan.started_at <= scan.finished_at <= now
            if previous is not None:
                assert previous.finished_at <= scan.created_at
            previous = scan
        day_of = {s.pk: s for s in scans}
        events = list(TagEvent.objects.for_org(organization).select_related("resource"))
        for event in events:  # a replayed day's changes are dated that day, today's today
            scan = day_of[event.scan_id]
            if scan.trigger == simulation.TRIGGER:
                assert event.seen_at == scan.finished_at
            else:
                assert scan.created_at <= event.seen_at <= scan.finished_at
        resources = list(Resource.objects.for_org(organization).select_related("account"))
        for resource in resources:
            assert resource.first_seen.date() == day_of[resource.first_scan_id].created_at.date()
            # Deleted on a simulated day, or by today's scan (a legacy twin whose day is today).
            assert resource.deleted_at is None or resource.deleted_at <= present[0].finished_at
        # The story: worse at first, fixes spread over the period, some created part-way,
        # a few deleted, a partial day with a throttled unit that says it was simulated.
        changed_days = {e.seen_at.date() for e in events if e.kind == TagEvent.CHANGED}
        assert len(changed_days) >= 10
        first_day = simulated[0].created_at
        assert any(r.first_seen > first_day for r in resources)
        assert any(r.deleted_at for r in resources)
        partial = [s for s in simulated if s.status == ScanRun.PARTIAL]
        assert len(partial) == 1 and partial[0].created_at.date() >= today - timedelta(days=30)
        failed = ScanUnit.objects.for_org(organization).get(scan=partial[0], status=ScanUnit.FAILED)
        assert failed.error_code == "ThrottlingException" and "simulated" in failed.error

        # Every day's organization score, recomputed from the recorded tag history.
        by_resource = defaultdict(list)
        for event in events:
            by_resource[event.resource_id].append(event)
        teams = {aws_id: slugs for aws_id, slugs in teams_by_account(organization).values()}
        snapshots = {
            s.day: s
            for s in ScoreSnapshot.objects.for_org(organization).filter(
                kind=ScoreSnapshot.ORGANIZATION
            )
        }
        assert len(snapshots) == simulation.DAYS + 1
        for day in range(simulation.DAYS):
            moment = simulation.moment(today, day, simulation.SNAPSHOT_AT)
            recomputed = _score_from_history(
                organization, resources, by_resource, teams, day, moment
            )
            snap = snapshots[moment.date()]
            assert (snap.in_scope, snap.compliant) == recomputed, moment.date()
        snap = snapshots[today]
        assert (snap.in_scope, snap.compliant) == _score_from_history(
            organization, resources, by_resource, teams, simulation.DAYS, now
        )
        scores = [snapshots[d].score for d in sorted(snapshots)]
        assert scores[0] < scores[-1]  # better tagged today than 89 days ago
        assert any(b < a for a, b in zip(scores, scores[1:], strict=False))  # regressions

        # The present is what the scanners read from moto now.
        read = runner.fetch_units(organization, scope=runner.Scope(), workers=2)
    found = {r.arn: r.tags for f in read.values() for page in f.pages for r in page}
    live = {r.arn: r.tags for r in resources if r.deleted_at is None}
    assert live == found

    # Every trend point is measured.
    owner = User.objects.get(email=DEMO_ADMIN)
    body = client_for(owner).get(f"/api/v1/o/{organization.slug}/policies/trends/?days=90").json()
    assert len(body["points"]) == simulation.DAYS + 1
    assert {p["source"] for p in body["points"]} == {"measured"}

    # A second start scans today again and simulates nothing.
    call_command("setup_demo_estate", endpoint=endpoint, resources=RESOURCES, workers=2)
    with tenant_scope(organization):
        assert (
            ScanRun.objects.for_org(organization).filter(trigger=simulation.TRIGGER).count()
            == simulation.DAYS
        )
        assert ScanRun.objects.for_org(organization).count() == simulation.DAYS + 2
        days = ScoreSnapshot.objects.for_org(organization).values("day").distinct().count()
        assert days == simulation.DAYS + 1
