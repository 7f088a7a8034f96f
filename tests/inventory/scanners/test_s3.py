"""S3 bucket scanner: global listing, each bucket in its own region, tagged and never tagged."""

import boto3
import pytest

from inventory.scanners.base import ScanContext
from inventory.scanners.s3 import BucketScanner

from .conftest import ACCOUNT, scan

GLOBAL = BucketScanner.global_region


@pytest.fixture
def global_ctx(aws):
    """The context the runner builds for a global scanner: its global_region."""
    session = boto3.Session(region_name=GLOBAL)
    return ScanContext(
        account_id=ACCOUNT,
        region=GLOBAL,
        partition="aws",
        client=lambda service: session.client(service, region_name=GLOBAL),
    )


def _estate():
    us = boto3.client("s3", region_name="us-east-1")
    us.create_bucket(Bucket="tagged-bucket")
    us.put_bucket_tagging(
        Bucket="tagged-bucket",
        Tagging={"TagSet": [{"Key": "Name", "Value": "Assets"}, {"Key": "Owner", "Value": "bob"}]},
    )
    us.put_bucket_versioning(Bucket="tagged-bucket", VersioningConfiguration={"Status": "Enabled"})
    us.create_bucket(Bucket="plain-bucket")
    eu = boto3.client("s3", region_name="eu-central-1")
    eu.create_bucket(
        Bucket="frankfurt-bucket",
        CreateBucketConfiguration={"LocationConstraint": "eu-central-1"},
    )
    eu.put_bucket_tagging(
        Bucket="frankfurt-bucket", Tagging={"TagSet": [{"Key": "Team", "Value": "data"}]}
    )


def test_global_region():
    assert GLOBAL == "us-east-1"


def test_tagged_and_never_tagged_buckets(global_ctx):
    _estate()
    found = scan(BucketScanner, global_ctx)
    assert set(found) == {"tagged-bucket", "plain-bucket", "frankfurt-bucket"}
    tagged = found["tagged-bucket"]
    assert tagged.tags == {"Name": "Assets", "Owner": "bob"}
    assert tagged.name == "Assets"
    assert tagged.arn == "arn:aws:s3:::tagged-bucket"
    assert tagged.resource_type == "s3:bucket"
    assert tagged.region == "us-east-1"
    assert tagged.config["Region"] == "us-east-1"
    assert tagged.config["Versioning"] == "Enabled"
    assert "CreationDate" in tagged.config
    plain = found["plain-bucket"]
    assert plain.tags == {}  # NoSuchTagSet: still reported
    assert plain.name == "plain-bucket"
    assert plain.arn == "arn:aws:s3:::plain-bucket"
    assert plain.config["Versioning"] == "Disabled"
    assert plain.relations == []


def test_bucket_in_another_region_reports_that_region(global_ctx):
    _estate()
    frankfurt = scan(BucketScanner, global_ctx)["frankfurt-bucket"]
    assert frankfurt.region == "eu-central-1"
    assert frankfurt.config["Region"] == "eu-central-1"
    assert frankfurt.tags == {"Team": "data"}
    assert frankfurt.arn == "arn:aws:s3:::frankfurt-bucket"  # no region, no account


def test_pages_are_lists_of_records(global_ctx):
    _estate()
    pages = list(BucketScanner().pages(global_ctx))
    assert pages and all(isinstance(page, list) for page in pages)
    assert sum(len(page) for page in pages) == 3
