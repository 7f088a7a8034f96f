"""CI check benchmark: a Terraform plan of N resources through the real CI check path.

A `terraform show -json` document is generated in the shape terraform 1.11 writes (modules,
provider default_tags in `tags_all`, values known only after apply, deletions, data sources,
untaggable types), then timed: parse (policies.ci.plan), evaluation against the built-in rule
library (policies.ci.check with policies/data/rules.yaml), and the answer with its JUnit XML
(policies.ci.report.build_response) — what `POST .../policies/ci-check/` does per request,
without HTTP.

    .venv/bin/python bench/ci_check.py --resources 5000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.test")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TYPES = (  # (terraform type, share of the plan)
    ("aws_instance", 30),
    ("aws_ebs_volume", 20),
    ("aws_s3_bucket", 10),
    ("aws_db_instance", 5),
    ("aws_dynamodb_table", 5),
    ("aws_lambda_function", 10),
    ("aws_security_group", 10),
    ("aws_security_group_rule", 5),  # untaggable
    ("aws_route", 5),  # untaggable
)
DEFAULT_TAGS = {"CostCenter": "CC-1234", "ManagedBy": "terraform"}


def plan(resources: int) -> bytes:
    changes = []
    weights = [w for _, w in TYPES]
    for i in range(resources):
        tf_type = TYPES[i % len(TYPES)][0] if i % sum(weights) >= 0 else TYPES[0][0]
        module = f"module.svc{i % 40}" if i % 3 else ""
        address = f"{module + '.' if module else ''}{tf_type}.r{i}"
        own = {"Name": f"svc-{i}", "Environment": ("prod", "dev", "staging")[i % 3]}
        if i % 5:
            own["Owner"] = f"team-{i % 12}@example.com"
        if i % 4 == 0:
            own["DataClassification"] = "internal"
        untaggable = tf_type in ("aws_security_group_rule", "aws_route")
        after = {} if untaggable else {"tags": own, "tags_all": {**DEFAULT_TAGS, **own}}
        after_unknown = {"arn": True, "id": True}
        if not untaggable and i % 50 == 0:  # a value known only after apply
            after["tags_all"].pop("Owner", None)
            after_unknown["tags_all"] = {"Owner": True}
        actions = ["delete"] if i % 97 == 0 else ["create"]
        changes.append(
            {
                "address": address,
                "module_address": module,
                "mode": "managed",
                "type": tf_type,
                "name": f"r{i}",
                "provider_name": "registry.terraform.io/hashicorp/aws",
                "change": {
                    "actions": actions,
                    "before": after if actions == ["delete"] else None,
                    "after": None if actions == ["delete"] else after,
                    "after_unknown": {} if actions == ["delete"] else after_unknown,
                },
            }
        )
    changes.append(
        {
            "address": "data.aws_caller_identity.current",
            "mode": "data",
            "type": "aws_caller_identity",
            "name": "current",
            "provider_name": "registry.terraform.io/hashicorp/aws",
            "change": {"actions": ["read"], "before": None, "after": {}, "after_unknown": {}},
        }
    )
    document = {"format_version": "1.2", "terraform_version": "1.11.4"}
    document["resource_changes"] = changes
    return json.dumps(document).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    import django

    django.setup()
    from policies.ci.check import check
    from policies.ci.plan import parse_terraform_plan
    from policies.ci.report import build_response
    from policies.engine.spec import builtin_rules

    rules = builtin_rules()
    body = plan(args.resources)
    print(
        f"plan: {args.resources:,} resource changes, {len(body) / 2**20:.1f} MiB of JSON; "
        f"{len(rules)} built-in rules"
    )
    check(parse_terraform_plan(body), rules)  # warm-up: the scanner registry, regexes
    phases: dict[str, list[float]] = {"parse": [], "evaluate": [], "answer": [], "total": []}
    for _ in range(args.runs):
        t0 = time.perf_counter()
        planned = parse_terraform_plan(body)
        t1 = time.perf_counter()
        results = check(planned, rules)
        t2 = time.perf_counter()
        answer = build_response(results, [r.id for r in rules], "plan.json")
        t3 = time.perf_counter()
        for name, value in (
            ("parse", t1 - t0),
            ("evaluate", t2 - t1),
            ("answer", t3 - t2),
            ("total", t3 - t0),
        ):
            phases[name].append(value)
    summary = answer["summary"]
    print(
        f"checked {summary['checked']:,}, skipped {summary['skipped']:,}, violations "
        f"{summary['violations']:,} ({summary['enforced_violations']:,} enforced), exit code "
        f"{answer['exit_code']}, JUnit {len(answer['junit']) / 2**20:.1f} MiB"
    )
    for name, values in phases.items():
        print(
            f"{name:9} median {1000 * statistics.median(values):7.1f} ms   "
            f"min {1000 * min(values):7.1f} ms   max {1000 * max(values):7.1f} ms"
        )
    print(f"target: the whole check of {args.resources:,} resources within 1 s")


if __name__ == "__main__":
    main()
