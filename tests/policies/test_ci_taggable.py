"""The taggable table: generated from the AWS provider schema, covering every scanned type."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inventory.scanners.base import scanners
from policies.ci.taggable import (
    CLOUDFORMATION_TYPES,
    TERRAFORM_TO_TAGSENSE,
    cloudformation_type_info,
    terraform_table,
    terraform_type_info,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "policies" / "ci" / "data" / "terraform_aws_taggable.json"
NOT_IN_CLOUDFORMATION = {"ec2:snapshot", "ec2:image"}  # no CloudFormation resource type


def test_table_comes_from_provider_5_100_0():
    table = terraform_table()
    assert (table["provider"], table["version"]) == (
        "registry.terraform.io/hashicorp/aws",
        "5.100.0",
    )
    assert len(table["types"]) > 1500  # every resource type of the provider


def test_every_scanned_type_has_a_taggable_terraform_type():
    mapped = set(TERRAFORM_TO_TAGSENSE.values())
    assert set(scanners()) <= mapped, set(scanners()) - mapped
    for tf_type, resource_type in TERRAFORM_TO_TAGSENSE.items():
        info = terraform_type_info(tf_type)
        assert info.known, tf_type
        assert (info.resource_type, info.taggable, info.default_tags) == (resource_type, True, True)


def test_every_scanned_type_has_a_cloudformation_type():
    mapped = {t for t, prop in CLOUDFORMATION_TYPES.values() if t}
    assert set(scanners()) - NOT_IN_CLOUDFORMATION <= mapped
    for cfn_type, (resource_type, _) in CLOUDFORMATION_TYPES.items():
        if resource_type:
            assert cloudformation_type_info(cfn_type).taggable, cfn_type


@pytest.mark.parametrize(
    "tf_type",
    [
        "aws_iam_role_policy_attachment",
        "aws_route",
        "aws_security_group_rule",
        "aws_s3_bucket_policy",
        "aws_lambda_permission",
        "aws_inspector_resource_group",  # its `tags` select instances, they are not its own
    ],
)
def test_untaggable_terraform_types(tf_type):
    info = terraform_type_info(tf_type)
    assert (info.known, info.taggable) == (True, False)


def test_taggable_in_5_100_0_though_often_assumed_not():
    # Listener rules and the new security-group rule resources do take tags in 5.x.
    for tf_type in ("aws_lb_listener_rule", "aws_vpc_security_group_ingress_rule"):
        assert terraform_type_info(tf_type).taggable, tf_type


def test_autoscaling_group_is_tagged_by_blocks():
    info = terraform_type_info("aws_autoscaling_group")
    assert (info.taggable, info.tag_blocks, info.default_tags) == (True, True, False)


def test_committed_table_matches_the_provider_schema(tmp_path, terraform_mirror):
    out = tmp_path / "table.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "gen_ci_taggable.py"),
            "--version",
            "5.100.0",
            "--plugin-dir",
            str(terraform_mirror),
            "--output",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    assert json.loads(out.read_text()) == json.loads(DATA.read_text())
