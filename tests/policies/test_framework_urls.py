"""A built-in framework whose id holds a dot (pci-dss-4.0) has working pages and endpoints, and
the dashboard and framework list that link to it render."""

import pytest

from policies import services
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_pci_dss_pages_and_endpoints_answer(org, admin):
    with tenant_scope(org, actor=Actor.system("test")):
        framework = services.enable_framework(org, "pci-dss-4.0")
        control = framework.controls.first()
    client = client_for(admin)
    for path in (
        f"/o/{org.slug}/",
        f"/o/{org.slug}/policies/frameworks/",
        f"/o/{org.slug}/policies/frameworks/pci-dss-4.0/",
        f"/api/v1/o/{org.slug}/policies/frameworks/pci-dss-4.0/",
        f"/api/v1/o/{org.slug}/policies/frameworks/pci-dss-4.0/controls/{control.pk}/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
    page = client.get(f"/o/{org.slug}/").content.decode()
    assert f'href="/o/{org.slug}/policies/frameworks/pci-dss-4.0/"' in page
