#!/usr/bin/env python3
"""Regenerate policies/ci/data/terraform_aws_taggable.json from the AWS provider's schema.

A Terraform resource type is taggable iff its schema has a `tags` attribute; provider
`default_tags` reach it iff it also has `tags_all`. The schema comes from
`terraform providers schema -json`, run in a scratch directory against a local provider
mirror, so no network is needed:

    scripts/gen_ci_taggable.py --plugin-dir /opt/tf-plugins --version 5.100.0

or, with a schema dumped earlier: scripts/gen_ci_taggable.py --schema schema.json --version 5.100.0
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PROVIDER = "registry.terraform.io/hashicorp/aws"
OUTPUT = Path(__file__).resolve().parent.parent / "policies/ci/data/terraform_aws_taggable.json"

# Types whose `tags` attribute is not the resource's own tags. aws_inspector_resource_group:
# `tags` is the tag filter that selects the group's EC2 instances.
NOT_RESOURCE_TAGS = {"aws_inspector_resource_group"}
# Types tagged through something other than a `tags` map (handled by policies/ci/plan.py).
TAG_BLOCKS = {"aws_autoscaling_group"}  # repeated `tag { key value propagate_at_launch }`


def load_schema(args: argparse.Namespace) -> dict:
    if args.schema:
        return json.loads(Path(args.schema).read_text())
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "main.tf").write_text(
            'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws", '
            f'version = "{args.version}" }}\n  }}\n}}\n'
        )
        init = ["terraform", "init", "-backend=false", f"-plugin-dir={args.plugin_dir}"]
        subprocess.run(  # noqa: S603
            init,
            cwd=scratch,
            check=True,
            capture_output=True,
        )
        out = subprocess.run(  # noqa: S603
            ["terraform", "providers", "schema", "-json"],  # noqa: S607
            cwd=scratch,
            check=True,
            capture_output=True,
        )
        return json.loads(out.stdout)


def build(schema: dict, version: str) -> dict:
    resources = schema["provider_schemas"][PROVIDER]["resource_schemas"]
    tags_all: list[str] = []
    tags_only: list[str] = []
    tag_blocks: list[str] = []
    untaggable: list[str] = []
    for name, resource in sorted(resources.items()):
        attributes = resource["block"].get("attributes", {})
        if name in TAG_BLOCKS:
            tag_blocks.append(name)
        elif "tags" not in attributes or name in NOT_RESOURCE_TAGS:
            untaggable.append(name)
        elif "tags_all" in attributes:
            tags_all.append(name)
        else:
            tags_only.append(name)
    return {
        "provider": PROVIDER,
        "version": version,
        "generated_by": "scripts/gen_ci_taggable.py",
        "rule": "taggable iff the schema has a `tags` attribute; default_tags apply iff `tags_all`",
        "tags_all": tags_all,
        "tags_only": tags_only,
        "tag_blocks": tag_blocks,
        "untaggable": untaggable,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="provider version, e.g. 5.100.0")
    parser.add_argument("--plugin-dir", default="/opt/tf-plugins")
    parser.add_argument("--schema", help="a `terraform providers schema -json` dump")
    parser.add_argument("--output", default=str(OUTPUT))
    args = parser.parse_args()
    data = build(load_schema(args), args.version)
    Path(args.output).write_text(json.dumps(data, indent=0) + "\n")
    print(
        f"{args.output}: {len(data['tags_all'])} with tags_all, {len(data['tags_only'])} tags "
        f"only, {len(data['tag_blocks'])} tag blocks, {len(data['untaggable'])} untaggable",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
