"""A resource's page shows its findings (rule, status, since, exemption) and how to fix them:
loaded from policies into inventory's page with htmx, and reachable by a plain link without
JavaScript. Only members who may see the resource see them."""

from __future__ import annotations

import re

import pytest

from inventory import services as inventory_services
from inventory.models import AwsAccount
from policies.models import Finding
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.factories import TeamMembershipFactory
from tests.policies.test_exemptions import FUTURE, failing, only_exemption  # noqa: F401

pytestmark = pytest.mark.django_db


def _findings_url(org, finding):
    return f"/o/{org.slug}/findings/resource/{finding.resource_id}/"


def test_the_resource_page_leads_to_its_findings_with_and_without_javascript(org, failing, editor):  # noqa: F811
    client = client_for(editor)
    page = client.get(f"/o/{org.slug}/inventory/resources/{failing[0].resource_id}/")
    html = page.content.decode()
    url = _findings_url(org, failing[0])
    assert f'hx-get="{url}"' in html and f'href="{url}"' in html  # htmx, and a link without it

    fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment and 'id="resource-findings"' in fragment
    whole = client.get(url).content.decode()
    assert "<html" in whole and 'id="resource-findings"' in whole
    for shown in (fragment, whole):
        row = re.search(r'<tr class="finding finding-open">(.*?)</tr>', shown, re.S).group(1)
        assert "owner-required" in row and "open" in row
        assert failing[0].first_seen.strftime("%Y-%m-%d") in row  # since
        assert "none" in row  # no exemption
        assert "Owner" in row  # the fix names the key to add
        assert f'href="/o/{org.slug}/policies/rules/owner-required/"' in row


def test_a_resource_with_no_findings_says_so(org, failing, editor):  # noqa: F811
    with tenant_scope(org):
        Finding.objects.filter(resource_id=failing[0].resource_id).delete()
    page = client_for(editor).get(_findings_url(org, failing[0])).content.decode()
    assert "No findings" in page


def test_an_approved_exemption_shows_on_the_resource(org, failing, editor, admin):  # noqa: F811
    client = client_for(editor)
    url = _findings_url(org, failing[0])
    form = client.get(url).content.decode()
    assert f'name="finding" value="{failing[0].pk}"' in form  # request it from the resource
    client.post(
        f"/o/{org.slug}/findings/exemptions/",
        {"finding": [failing[0].pk], "justification": "legacy box", "expires_at": FUTURE},
    )
    exemption = only_exemption(org)
    client_for(admin).post(f"/o/{org.slug}/findings/exemptions/{exemption.pk}/approve/")
    page = client.get(url).content.decode()
    row = re.search(r'<tr class="finding finding-exempted">(.*?)</tr>', page, re.S).group(1)
    assert f"#{exemption.pk} approved" in row and f"until {FUTURE}" in row
    assert f'href="/o/{org.slug}/findings/exemptions/#exemption-{exemption.pk}"' in row


def test_a_viewer_sees_the_findings_but_no_exemption_form(org, failing, viewer):  # noqa: F811

    with tenant_scope(org):
        held = AwsAccount.objects.get(account_id="111111111111")
        holding = inventory_services.teams_holding(held)[0]
    TeamMembershipFactory(organization=org, team=holding, user=viewer)
    page = client_for(viewer).get(_findings_url(org, failing[0])).content.decode()
    assert "owner-required" in page and 'name="finding"' not in page


def test_findings_of_an_unseen_resource_are_404(org, other_org, failing, editor, outsider):  # noqa: F811
    hidden = failing[2]  # in an account no team of the editor's holds
    assert client_for(editor).get(_findings_url(org, hidden)).status_code == 404
    assert client_for(outsider).get(_findings_url(org, failing[0])).status_code == 404
    # Under the outsider's own slug, this organization's resource is missing as well.
    assert client_for(outsider).get(_findings_url(other_org, failing[0])).status_code == 404
