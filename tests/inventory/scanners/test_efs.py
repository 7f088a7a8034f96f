"""EFS file system scanner: tagged and never-tagged file systems, and Marker pagination."""

import boto3

from inventory.scanners.efs import FileSystemScanner

from .conftest import ACCOUNT, REGION, scan


def test_file_systems_tagged_and_never_tagged(ctx):
    efs = boto3.client("efs", region_name=REGION)
    tagged = efs.create_file_system(
        CreationToken="shared",
        Tags=[{"Key": "Name", "Value": "shared-home"}, {"Key": "Owner", "Value": "erin"}],
    )["FileSystemId"]
    untagged = efs.create_file_system(CreationToken="scratch")["FileSystemId"]
    found = scan(FileSystemScanner, ctx)
    assert set(found) == {tagged, untagged}
    fs = found[tagged]
    assert fs.resource_type == "elasticfilesystem:file-system"
    assert fs.tags == {"Name": "shared-home", "Owner": "erin"}
    assert fs.name == "shared-home"
    assert fs.arn == f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/{tagged}"
    plain = found[untagged]
    assert plain.tags == {}
    assert plain.name == ""
    assert plain.arn == f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/{untagged}"


def test_every_page_is_followed(ctx):
    # moto returns ten file systems per DescribeFileSystems page, with a NextMarker.
    efs = boto3.client("efs", region_name=REGION)
    ids = {efs.create_file_system(CreationToken=f"fs-{i}")["FileSystemId"] for i in range(23)}
    pages = list(FileSystemScanner().pages(ctx))
    assert len(pages) == 3
    assert {r.resource_id for page in pages for r in page} == ids
