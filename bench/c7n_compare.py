"""TagSense against Cloud Custodian (c7n) on the same moto_server estate.

Seeds EC2 instances (with their root volumes), extra EBS volumes, S3 buckets, RDS instances,
DynamoDB tables and Lambda functions in two regions, about 40% of them without an Owner tag.
Then runs, each as a separate process against the same server:
  - TagSense: `manage.py scan` over those types and regions (the real runner and storage, into
    the bench database), then counts live resources without an `Owner` tag key;
  - c7n: one policy per type with the filter `"tag:Owner": absent`, over the same regions.
Reports wall time, client CPU (the tool's process tree), API calls (requests in moto's log)
and moto's own CPU during each run, and the non-compliant count per type for both.

    .venv/bin/python bench/c7n_compare.py --instances 5000 --c7n /path/to/venv/bin/custodian

c7n is installed in a venv of its own (its pins differ from ours):
    python3 -m venv /tmp/c7nvenv && /tmp/c7nvenv/bin/pip install c7n
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

TYPES = {  # TagSense type -> c7n resource
    "ec2:instance": "ec2",
    "ec2:volume": "ebs",
    "s3:bucket": "s3",
    "rds:db": "rds",
    "dynamodb:table": "dynamodb-table",
    "lambda:function": "lambda",
}
ACCOUNT = "123456789012"


def _owner(i: int) -> list[dict]:
    return [] if i % 5 in (1, 3) else [{"Key": "Owner", "Value": f"team-{i % 7}"}]


def seed(endpoint: str, regions: list[str], instances: int) -> dict[str, int]:
    import boto3

    def client(service, region):
        return boto3.client(service, region_name=region, endpoint_url=endpoint)

    made = {t: 0 for t in TYPES}
    iam = client("iam", regions[0])
    role = iam.create_role(
        RoleName="bench-lambda",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return 1\n")
    per_region = instances // len(regions)
    for r, region in enumerate(regions):
        ec2 = client("ec2", region)
        i = 0
        while i < per_region:
            batch = min(10, per_region - i)
            tags = _owner(i // 10)
            spec = [{"ResourceType": "instance", "Tags": tags}] if tags else []
            ec2.run_instances(
                ImageId="ami-12c6146b", MinCount=batch, MaxCount=batch, TagSpecifications=spec
            )
            i += batch
        made["ec2:instance"] += per_region
        for v in range(per_region // 5):
            tags = _owner(v)
            ec2.create_volume(
                AvailabilityZone=f"{region}a",
                Size=8,
                **(
                    {"TagSpecifications": [{"ResourceType": "volume", "Tags": tags}]}
                    if tags
                    else {}
                ),
            )
        s3 = client("s3", region)
        for b in range(50):
            name = f"bench-{region}-{b}"
            if region == "us-east-1":
                s3.create_bucket(Bucket=name)
            else:
                s3.create_bucket(
                    Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
                )
            if _owner(b):
                s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _owner(b)})
        rds = client("rds", region)
        for d in range(10):
            rds.create_db_instance(
                DBInstanceIdentifier=f"db-{r}-{d}",
                Engine="postgres",
                DBInstanceClass="db.t3.micro",
                AllocatedStorage=20,
                MasterUsername="u",
                MasterUserPassword="password123",
                Tags=_owner(d),
            )
        ddb = client("dynamodb", region)
        for t in range(100):
            ddb.create_table(
                TableName=f"t-{r}-{t}",
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                Tags=_owner(t),
            )
        fn = client("lambda", region)
        for f in range(50):
            fn.create_function(
                FunctionName=f"fn-{r}-{f}",
                Runtime="python3.12",
                Role=role,
                Handler="handler.handler",
                Code={"ZipFile": code.getvalue()},
                Tags={t["Key"]: t["Value"] for t in _owner(f)},
            )
    made["ec2:volume"] = -1  # root volumes are made by EC2 too: counted by the tools
    return made


def moto_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def requests_logged(proc) -> int:
    log = proc.tagsense_log
    log.flush()
    log.seek(0)
    return sum(1 for line in log if b'HTTP/1.1"' in line)


def measure(command: list[str], env: dict, proc) -> dict:
    before_calls, before_moto = requests_logged(proc), moto_cpu(proc.pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return {
        "wall_s": wall,
        "client_cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "api_calls": requests_logged(proc) - before_calls,
        "moto_cpu_s": moto_cpu(proc.pid) - before_moto,
        "stdout": result.stdout,
    }


def run_tagsense(endpoint: str, regions: list[str], proc) -> tuple[dict, dict[str, set[str]]]:
    from inventory.models import Resource
    from tagsense.tenancy.db import tenant_scope

    org, _ = _setup.make_account("c7n", account_id=ACCOUNT, regions=tuple(regions))
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    command = [
        sys.executable,
        str(_setup.ROOT / "manage.py"),
        "scan",
        "--org",
        org.slug,
        "--workers",
        "4",
    ]
    for t in TYPES:
        command += ["--type", t]
    stats = measure(command, env, proc)
    found: dict[str, set[str]] = {t: set() for t in TYPES}
    with tenant_scope(org):
        rows = (
            Resource.objects.live()
            .filter(resource_type__in=list(TYPES))
            .exclude(tags__has_key="Owner")
            .values_list("resource_type", "resource_id", "arn")
        )
        for rtype, rid, arn in rows:
            found[rtype].add(arn if rtype in ("dynamodb:table", "lambda:function") else rid)
    return stats, found


def run_c7n(custodian: str, endpoint: str, regions: list[str], proc) -> tuple[dict, dict]:
    out = Path(tempfile.mkdtemp(prefix="c7n-"))
    policies = {
        "policies": [
            {
                "name": f"missing-owner-{resource_name}",
                "resource": resource_name,
                "filters": [{"tag:Owner": "absent"}],
            }
            for resource_name in TYPES.values()
        ]
    }
    path = out / "policies.json"
    path.write_text(json.dumps(policies))
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    command = [custodian, "run", "-s", str(out / "output"), "--cache-period", "0"]
    for region in regions:
        command += ["--region", region]
    stats = measure(command + [str(path)], env, proc)
    counts = {}
    for tagsense_type, resource_name in TYPES.items():
        found = set()  # S3 is global: every region's run lists every bucket
        for resources in (out / "output").glob(f"**/missing-owner-{resource_name}/resources.json"):
            for item in json.loads(resources.read_text()):
                found.add(next(str(item[k]) for k in IDENTITY if k in item))
        counts[tagsense_type] = found
    return stats, counts


IDENTITY = ("InstanceId", "VolumeId", "Name", "DBInstanceIdentifier", "TableArn", "FunctionArn")


def truth(endpoint: str, regions: list[str]) -> dict[str, set[str]]:
    """What really lacks an Owner tag, read straight from the service APIs, every page."""
    import boto3

    def client(service, region):
        return boto3.client(service, region_name=region, endpoint_url=endpoint)

    def owned(tags):
        return any((t.get("Key") or t.get("key")) == "Owner" for t in tags or [])

    missing: dict[str, set[str]] = {t: set() for t in TYPES}
    for region in regions:
        ec2 = client("ec2", region)
        for page in ec2.get_paginator("describe_instances").paginate():
            for reservation in page["Reservations"]:
                for item in reservation["Instances"]:
                    if not owned(item.get("Tags")):
                        missing["ec2:instance"].add(item["InstanceId"])
        for page in ec2.get_paginator("describe_volumes").paginate():
            for item in page["Volumes"]:
                if not owned(item.get("Tags")):
                    missing["ec2:volume"].add(item["VolumeId"])
        for page in client("rds", region).get_paginator("describe_db_instances").paginate():
            for item in page["DBInstances"]:
                if not owned(item.get("TagList")):
                    missing["rds:db"].add(item["DBInstanceIdentifier"])
        ddb = client("dynamodb", region)
        for page in ddb.get_paginator("list_tables").paginate():
            for name in page["TableNames"]:
                arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
                tags = []
                for tag_page in ddb.get_paginator("list_tags_of_resource").paginate(
                    ResourceArn=arn
                ):
                    tags.extend(tag_page["Tags"])
                if not owned(tags):
                    missing["dynamodb:table"].add(arn)
        fn = client("lambda", region)
        for page in fn.get_paginator("list_functions").paginate():
            for item in page["Functions"]:
                tags = fn.list_tags(Resource=item["FunctionArn"]).get("Tags", {})
                if "Owner" not in tags:
                    missing["lambda:function"].add(item["FunctionArn"])
    s3 = client("s3", regions[0])
    for bucket in s3.list_buckets()["Buckets"]:
        try:
            tags = s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]
        except s3.exceptions.ClientError:
            tags = []
        if not owned(tags):
            missing["s3:bucket"].add(bucket["Name"])
    return missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5000)
    parser.add_argument("--regions", default="us-east-1,eu-west-1")
    parser.add_argument("--c7n", default="/tmp/c7nvenv/bin/custodian", help="custodian binary")
    args = parser.parse_args()
    regions = args.regions.split(",")
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=regions[0]
    )
    _setup.configure()
    _setup.print_machine()
    from demo.estate import start_moto_server, stop_moto_server

    proc, endpoint = start_moto_server()
    try:
        started = time.perf_counter()
        seed(endpoint, regions, args.instances)
        print(
            f"seeded {args.instances} instances and the rest in "
            f"{time.perf_counter() - started:.0f} s (moto_server {endpoint})"
        )
        tagsense, tagsense_counts = run_tagsense(endpoint, regions, proc)
        c7n, c7n_counts = run_c7n(args.c7n, endpoint, regions, proc)
        real = truth(endpoint, regions)
    finally:
        stop_moto_server(proc)
    print(f"\n{'':24}{'TagSense':>12}{'c7n':>12}")
    for key, label in (
        ("wall_s", "wall time (s)"),
        ("client_cpu_s", "client CPU (s)"),
        ("api_calls", "API calls"),
        ("moto_cpu_s", "moto_server CPU (s)"),
    ):
        print(f"{label:24}{tagsense[key]:>12.1f}{c7n[key]:>12.1f}")
    print("\nresources without an Owner tag, per type: truth (service APIs, every page)")
    print("/ TagSense / c7n, and how far each is from the truth:")
    for t in TYPES:
        line = (
            f"  {t:20} {len(real[t]):>6} / {len(tagsense_counts[t]):>6} / {len(c7n_counts[t]):>6}"
        )
        for name, got in (("TagSense", tagsense_counts[t]), ("c7n", c7n_counts[t])):
            missed, wrong = len(real[t] - got), len(got - real[t])
            if missed or wrong:
                line += f"   {name}: {missed} missed, {wrong} wrongly flagged"
        print(line)
    agree = all(tagsense_counts[t] == c7n_counts[t] for t in TYPES)
    exact = all(tagsense_counts[t] == real[t] for t in TYPES)
    print(
        f"\nTagSense matches the truth: {'yes' if exact else 'NO'}; "
        f"TagSense and c7n agree: {'yes' if agree else 'NO'}"
    )
    for name, stats in (("TagSense", tagsense), ("c7n", c7n)):
        share = 100 * stats["moto_cpu_s"] / stats["wall_s"] if stats["wall_s"] else 0
        print(f"{name}: moto_server was busy {share:.0f}% of the wall time")


if __name__ == "__main__":
    main()
