"""Scanner tests run against moto's in-process AWS (mock_aws); they need no database."""

import pytest
from moto import mock_aws

from inventory import aws as aws_api
from inventory.scanners.base import ScanContext, Scanner

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def aws():
    with mock_aws():
        yield


@pytest.fixture
def ctx(aws):
    """A scan context for moto's account in REGION, with the runner's scanning session (its
    timestamps arrive as text)."""
    session = aws_api.session_for(None, REGION, scanning=True)
    return ScanContext(
        account_id=ACCOUNT,
        region=REGION,
        partition="aws",
        client=lambda service: session.client(service, region_name=REGION),
    )


def scan(scanner_cls, ctx):
    """Every record the scanner yields, keyed by resource id."""
    records = [r for page in scanner_cls().pages(ctx) for r in page]
    return {r.resource_id: r for r in records}


@pytest.fixture
def small_pages(monkeypatch):
    """Every paginated call asks for one item a page, so every token must be followed."""

    def paginate(client, operation, **kwargs):
        paginator = client.get_paginator(operation)
        yield from paginator.paginate(PaginationConfig={"PageSize": 1}, **kwargs)

    monkeypatch.setattr(Scanner, "paginate", staticmethod(paginate))
