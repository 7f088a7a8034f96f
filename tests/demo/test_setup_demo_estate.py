"""The demo seeder's count matches what the first scan then shows: it names the resources AWS
(moto) made by itself, which a scan finds too."""

from demo.estate import EstateSummary
from demo.management.commands.setup_demo_estate import seeded_message


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
