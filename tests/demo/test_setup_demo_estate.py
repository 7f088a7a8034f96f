"""The demo seeder's count matches what the first scan then shows: it names the resources AWS
(moto) made by itself, which a scan finds too."""

import io

from django.core.management import call_command

from demo.estate import EstateSummary, start_moto_server, stop_moto_server
from demo.management.commands.setup_demo_estate import _has_organization, seeded_message


def test_the_seeder_says_how_many_resources_the_scan_will_find():
    summary = EstateSummary(
        management_account_id="123456789012",
        organization_id="o-x",
        accounts=[{}, {}, {}],
        counts={"ec2:instance": 1500, "s3:bucket": 511},
        total=2011,
        defaults={"ec2:vpc": 12, "ec2:subnet": 54, "ec2:security-group": 36},
    )
    text = seeded_message(summary)
    assert "Seeded 2011 resources in 3 member accounts" in text
    assert "102 default resources" in text and "about 2113 resources in all" in text
    assert "12 ec2:vpc" in text and "54 ec2:subnet" in text and "36 ec2:security-group" in text


def test_without_defaults_the_seeder_says_nothing_more():
    summary = EstateSummary("1", "o", [{}], {"s3:bucket": 2}, 2)
    assert "default" not in seeded_message(summary)


def test_seed_only_seeds_moto_without_the_database(monkeypatch):
    """`make run` seeds moto while the database is still prepared (scripts/run-embedded.sh):
    --seed-only must read no database (this test has none: any query would raise), seed the
    estate once with the demo's ids, and leave a seeded server as it is."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    proc, url = start_moto_server()
    try:
        assert _has_organization(url) is None
        out = io.StringIO()
        call_command("setup_demo_estate", endpoint=url, resources=20, seed_only=True, stdout=out)
        assert out.getvalue().startswith("Seeded ") and "member accounts" in out.getvalue()
        management_id = _has_organization(url)
        assert management_id
        again = io.StringIO()
        call_command("setup_demo_estate", endpoint=url, resources=20, seed_only=True, stdout=again)
        assert again.getvalue().strip() == "The moto server holds the demo estate."
        assert _has_organization(url) == management_id
    finally:
        stop_moto_server(proc)
