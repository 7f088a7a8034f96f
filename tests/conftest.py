"""Fixtures: two organizations and a user for each role (STYLE.md §6)."""

import shutil
import time
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from moto import mock_aws
from moto.ce.responses import CostExplorerResponse

from accounts import throttle
from accounts.roles import Role
from tagsense.celery import app
from tagsense.tenancy import db as tenancy_db
from tests.browser import browser_page, chromium_browser  # noqa: F401 - fixtures
from tests.factories import (
    PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    TeamFactory,
    UserFactory,
)


@pytest.fixture(autouse=True)
def _empty_cache():
    """The cache holds sign-in rate limits and used TOTP codes: each test starts with none."""

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session", autouse=True)
def _evidence_root():
    """The test run's evidence packages (settings/test.py: a temporary folder), removed at the
    end of the session."""
    yield
    shutil.rmtree(settings.EVIDENCE_ROOT, ignore_errors=True)


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Acme Corp", slug="acme")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(name="Globex", slug="globex")


def member_of(organization, role, email):
    return MembershipFactory(
        organization=organization, role=role, user=UserFactory(email=email)
    ).user


@pytest.fixture
def owner(org):
    return member_of(org, Role.OWNER, "owner@acme.example")


@pytest.fixture
def admin(org):
    return member_of(org, Role.ADMIN, "admin@acme.example")


@pytest.fixture
def editor(org):
    return member_of(org, Role.EDITOR, "editor@acme.example")


@pytest.fixture
def auditor(org):
    return member_of(org, Role.AUDITOR, "auditor@acme.example")


@pytest.fixture
def viewer(org):
    return member_of(org, Role.VIEWER, "viewer@acme.example")


@pytest.fixture
def outsider(other_org):
    """The owner of the other organization: a member of nothing in `org`."""
    return member_of(other_org, Role.OWNER, "owner@globex.example")


@pytest.fixture
def users_by_role(owner, admin, editor, auditor, viewer):
    return {
        Role.OWNER: owner,
        Role.ADMIN: admin,
        Role.EDITOR: editor,
        Role.AUDITOR: auditor,
        Role.VIEWER: viewer,
    }


@pytest.fixture
def team(org):
    return TeamFactory(organization=org, name="Platform", slug="platform")


@pytest.fixture
def other_team(other_org):
    return TeamFactory(organization=other_org, name="Globex Secret Team", slug="secret")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def aws_env(monkeypatch):
    """moto's in-process AWS, with fake credentials and no real endpoint in reach."""

    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    _moto_answers_cost_and_usage_with_resources(monkeypatch)
    with mock_aws():
        yield


def _moto_answers_cost_and_usage_with_resources(monkeypatch):
    """moto (5.2.5) does not implement Cost Explorer's GetCostAndUsageWithResources, which
    inventory.costs calls. Here moto answers it as it answers GetCostAndUsage: from the results
    a test injects through moto's API (`POST /moto-api/static/ce/cost-and-usage-results`), keyed
    by the request body, empty when none is injected. The request still goes through boto3's
    validation and moto's routing; only the tests do this, never production code."""

    if not hasattr(CostExplorerResponse, "get_cost_and_usage_with_resources"):
        monkeypatch.setattr(
            CostExplorerResponse,
            "get_cost_and_usage_with_resources",
            CostExplorerResponse.get_cost_and_usage,
            raising=False,
        )


@pytest.fixture
def celery_eager():
    """Celery runs each task at once in the caller's thread: the real task code (its base class
    carrying organization and actor), no worker."""

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def password():
    return PASSWORD


def store_tenant_keys():
    """What `migrate` does for row-level security's keys after SECRET_KEY or its fallbacks
    change (docs/architecture.md), inside the test's transaction: the one-login test set-up
    steps back to the owner for it, as migrate does, then returns to the app role."""

    role = settings.DATABASE_APP_ROLE
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        tenancy_db._install_tenant_functions(connection, cursor, role)
        cursor.execute(f"SET ROLE {connection.ops.quote_name(role)}")


@pytest.fixture
def one_cap_window(monkeypatch):
    """The audit caps count per clock minute (accounts.throttle.within_cap): a test that
    provokes a cap's worth of refusals across a minute's boundary would see two windows and
    twice the cap. Holds the throttle's clock inside one window."""
    start = int(time.time()) // throttle.INTERVAL * throttle.INTERVAL
    monkeypatch.setattr(throttle, "time", SimpleNamespace(time=lambda: start + 1.0))
