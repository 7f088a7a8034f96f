"""Scanning sessions read timestamps as text, written exactly as botocore's own parsing would
have been stored, so switching parsers changes no stored configuration."""

import boto3
import pytest
from botocore.utils import parse_timestamp

from inventory import aws
from inventory.aws import timestamp_text


@pytest.mark.parametrize(
    "value",
    [
        "2025-03-01T12:34:56.000Z",  # EC2 (query protocol)
        "2025-03-01T12:34:56Z",
        "2025-03-01T12:34:56.123456Z",
        "2024-11-05T08:00:00+02:00",
        "2025-03-01T12:34:56",  # no offset: left naive, as botocore does
        "1740832496",  # epoch seconds as text
        1740832496.5,  # JSON protocols send numbers
        "Sat, 01 Mar 2025 12:34:56 GMT",  # rest-xml headers (S3)
    ],
)
def test_timestamps_become_the_text_botocore_parsing_would_have_stored(value):
    assert timestamp_text(value) == parse_timestamp(value).isoformat()


def test_a_scan_session_returns_timestamps_as_text(aws_env):

    boto3.client("ec2", region_name="eu-west-1").create_volume(
        AvailabilityZone="eu-west-1a", Size=8
    )
    scanning = aws.session_for(None, "eu-west-1", scanning=True).client("ec2")
    plain = aws.session_for(None, "eu-west-1").client("ec2")
    (volume,) = scanning.describe_volumes()["Volumes"]
    (same,) = plain.describe_volumes()["Volumes"]
    assert volume["CreateTime"] == same["CreateTime"].isoformat()
