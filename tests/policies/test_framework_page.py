"""A framework's page at size: each failing control shows its first findings and how many there
are in all, and links to the findings list filtered to that control, which every findings
surface (page, CSV, API, an exemption of the filtered findings) understands."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest

from policies import evaluation
from policies.models import Finding
from policies.views import FrameworkDetailView
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.policies.test_frameworks import enable
from tests.policies.test_rules import make_resources

pytestmark = pytest.mark.django_db

BAD = 45  # resources failing CC8.1 (Environment: qa), more than the page shows


@pytest.fixture
def estate(org):
    make_resources(org, tags_list=[{"Environment": "prod"}] + [{"Environment": "qa"}] * BAD)
    enable(org)
    return org


def control_section(page: str, control_id: str) -> str:
    [section] = [
        s
        for s in page.split('<section class="card control"')[1:]
        if f"<code>{control_id}</code>" in s
    ]
    return section.split("</section>")[0]


def test_a_failing_control_shows_its_first_findings_with_the_total_and_a_link_to_all(estate, admin):
    client = client_for(admin)
    page = client.get(f"/o/{estate.slug}/policies/frameworks/soc2/").content.decode()
    cc81 = control_section(page, "CC8.1")
    shown = FrameworkDetailView.FINDINGS_SHOWN
    assert cc81.count("/inventory/resources/") == shown < BAD
    assert f"{shown} of {BAD} failing findings" in cc81
    cc61 = control_section(page, "CC6.1")  # owner and application missing: two per resource
    assert cc61.count("/inventory/resources/") == shown
    assert f"{shown} of {2 * (BAD + 1)} failing findings" in cc61  # + the good one

    [link] = re.findall(r'href="([^"]*/findings/\?[^"]*)">show all', cc81)
    link = html.unescape(link)
    assert "framework=soc2" in link and "control=CC8.1" in link
    listed = client.get(link).content.decode()
    with tenant_scope(estate):
        expected = set(
            Finding.objects.filter(
                status="open", rule__rule_id__in=["environment-required", "environment-values"]
            ).values_list("pk", flat=True)
        )
    assert len(expected) == BAD
    assert set(map(int, re.findall(r'name="finding" value="(\d+)"', listed))) == expected
    # the filter is kept in the form, so the CSV and the next page are of the same control
    assert 'name="framework" value="soc2"' in listed and 'name="control" value="CC8.1"' in listed
    exported = b"".join(client.get(link + "&format=csv").streaming_content).decode()
    rows = list(csv.reader(io.StringIO(exported)))[1:]
    assert len(rows) == BAD and {r[0] for r in rows} == {"environment-values"}


def test_a_control_with_few_failures_says_so_without_a_show_all(org, admin):
    make_resources(org, tags_list=[{"Environment": "qa"}] * 3)
    enable(org)
    page = client_for(admin).get(f"/o/{org.slug}/policies/frameworks/soc2/").content.decode()
    cc81 = control_section(page, "CC8.1")
    assert "3 of 3 failing findings" in cc81 and "show all" not in cc81
    assert "framework=soc2&amp;control=CC8.1" in cc81


def test_the_page_runs_a_bounded_number_of_queries_however_many_findings(
    estate, admin, django_assert_max_num_queries
):
    client = client_for(admin)
    url = f"/o/{estate.slug}/policies/frameworks/soc2/"
    client.get(url)  # warm the session and the caches
    make_resources(estate, account_id="222222222222", tags_list=[{"Environment": "qa"}] * 60)

    with tenant_scope(estate):
        evaluation.evaluate_organization(estate)
    with django_assert_max_num_queries(36):
        page = client.get(url).content.decode()
    assert f"of {BAD + 60} failing findings" in control_section(page, "CC8.1")


@pytest.mark.parametrize(
    "params",
    [
        {"framework": "soc2", "control": "CC0.0"},  # no such control
        {"framework": "nope", "control": "CC8.1"},  # no such framework
        {"framework": "soc2"},  # half a filter
        {"control": "CC8.1"},
    ],
)
def test_the_control_filter_matches_nothing_it_cannot_resolve(estate, admin, params):
    client = client_for(admin)
    api = client.get(f"/api/v1/o/{estate.slug}/policies/findings/", params).json()
    assert api["count"] == 0
    page = client.get(f"/o/{estate.slug}/findings/", params).content.decode()
    assert 'name="finding" value=' not in page and "No findings match." in page


def test_the_control_filter_is_the_same_on_the_api_and_for_an_exemption(estate, admin):
    client = client_for(admin)
    params = {"framework": "soc2", "control": "CC8.1", "status": "open"}
    api = client.get(f"/api/v1/o/{estate.slug}/policies/findings/", params).json()
    assert api["count"] == BAD
    assert {f["rule"] for f in api["results"]} == {"environment-values"}
    response = client.post(
        f"/o/{estate.slug}/findings/exemptions/",
        {"scope": "filtered", "justification": "migration", "expires_at": "2099-01-01", **params},
    )
    assert response.status_code == 302
    with tenant_scope(estate):
        exempted = Finding.objects.filter(exemption__isnull=False)
        assert exempted.count() == BAD
        assert {f.rule.rule_id for f in exempted.select_related("rule")} == {"environment-values"}


def test_another_organizations_framework_is_not_a_filter(estate, other_org, outsider):
    make_resources(other_org, account_id="999999999999", tags_list=[{"Environment": "qa"}])
    enable(other_org)
    api = client_for(outsider).get(
        f"/api/v1/o/{other_org.slug}/policies/findings/", {"framework": "soc2", "control": "CC8.1"}
    )
    assert api.json()["count"] == 1  # its own control's finding, none of acme's
