"""A demo AWS estate for TagSense, seeded into a moto server (never into real AWS).

start_moto_server() runs moto's standalone server (a subprocess from this venv) and
seed_estate() builds, through boto3 pointed at it, what a mid-sized company's AWS looks like: an
AWS Organization in the management account (moto's default account 123456789012), OUs, member
accounts reached by assuming OrganizationAccountAccessRole, a TagSenseReadOnly role in each, and
at least the requested number of resources (2,000 by default; seeded in about 35 s on 2 cores)
of every type TagSense scans, related the way real ones are and tagged with realistic hygiene:
mostly complete, the rest with case-variant keys, misspelt values, missing keys or no tags at
all. Everything random is drawn from random.Random(seed); only the
ids AWS (moto) generates differ between runs.

Known moto gaps (moto 5.2.5), none of them papered over here:
- The Resource Groups Tagging API's TagResources answers "Service not yet supported" for ELBv2,
  classic ELB and EKS ARNs. Every resource here is tagged through its own service's API (Tags on
  create, CreateTags, PutBucketTagging), which works for all types.
- Lambda Invoke needs Docker; functions are only created (from an in-memory zip), never invoked.
- DescribeSnapshots ignores OwnerIds: with moto's default AMIs loaded, "OwnerIds=['self']" also
  returns the ~1,300 snapshots behind those AMIs (owned by other accounts) in every account and
  region. start_moto_server() therefore sets MOTO_EC2_LOAD_DEFAULT_AMIS=false; against a server
  started without it, the summary's notes say how many foreign snapshots a scan will see.
- With the default AMIs off no public AMI exists, and moto does not validate ImageId (unless
  MOTO_ENABLE_AMI_VALIDATION is set), so the first instances are launched from PUBLIC_AMI, an id
  standing for an Amazon Linux image the estate does not own; later fleets launch from "golden"
  AMIs made from those instances.
- Lambda's VpcConfig.VpcId is always "vpc-123abc", whatever the subnets' VPC.
- DescribeCacheClusters returns no SecurityGroups, though CreateCacheCluster accepts them.
- ELBv2 DNS names are "<name>-1.<region>.elb.amazonaws.com": the same in every account for the
  same name, so load balancer names here carry the account's prefix.
- CreateImage makes one 15 GiB snapshot per AMI, whatever the instance's volumes (AWS makes one
  per EBS volume); those snapshots are untagged, as AWS leaves them unless asked.
- Organizations' CreateAccount creates OrganizationAccountAccessRole in the new account itself
  (as AWS does); STS AssumeRole never checks that a role exists or trusts the caller, nor does
  moto enforce IAM policies, so the roles and trust policies here are for realism only.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import botocore.loaders
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config

MANAGEMENT_ACCOUNT_ID = "123456789012"  # moto's default account: the "testing" credentials
MANAGEMENT_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
DEFAULT_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
READ_ONLY_ROLE = "TagSenseReadOnly"
ACCESS_ROLE = "OrganizationAccountAccessRole"
# What TagSenseReadOnly may do: list and describe every scanned type, read tags.
READ_ONLY_ACTIONS = [
    "ec2:Describe*",
    "elasticloadbalancing:Describe*",
    "lambda:List*",
    "lambda:GetFunction",
    "ecs:List*",
    "ecs:Describe*",
    "eks:List*",
    "eks:Describe*",
    "s3:ListAllMyBuckets",
    "s3:GetBucketLocation",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "rds:Describe*",
    "rds:ListTagsForResource",
    "dynamodb:ListTables",
    "dynamodb:DescribeTable",
    "dynamodb:ListTagsOfResource",
    "elasticache:Describe*",
    "elasticache:ListTagsForResource",
    "elasticfilesystem:Describe*",
    "cloudfront:ListDistributions",
    "cloudfront:ListTagsForResource",
    "tag:GetResources",
    "tag:GetTagKeys",
    "tag:GetTagValues",
]
# Stands for a public Amazon Linux AMI: owned by Amazon, not by the estate (see the module doc).
PUBLIC_AMI = "ami-0c02fb55956c7d316"

# Every resource type TagSense scans (inventory/scanners/), in the scanners' names.
RESOURCE_TYPES = (
    "ec2:instance",
    "ec2:volume",
    "ec2:snapshot",
    "ec2:image",
    "ec2:vpc",
    "ec2:subnet",
    "ec2:security-group",
    "elasticloadbalancing:loadbalancer",
    "elasticloadbalancing:targetgroup",
    "elb:loadbalancer",
    "lambda:function",
    "ecs:cluster",
    "ecs:service",
    "eks:cluster",
    "eks:nodegroup",
    "s3:bucket",
    "rds:db",
    "rds:cluster",
    "dynamodb:table",
    "elasticache:cluster",
    "elasticfilesystem:file-system",
    "cloudfront:distribution",
)

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=120,
    max_pool_connections=4,
)
# One loader for every session: service models are parsed once, not once per account.
_LOADER = botocore.loaders.create_loader()


# --- moto server ----------------------------------------------------------------------------


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _log_tail(proc: subprocess.Popen, limit: int = 2000) -> str:
    log = getattr(proc, "tagsense_log", None)
    if log is None:
        return ""
    log.flush()
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-limit:]


def start_moto_server(
    port: int | None = None,
    host: str = "127.0.0.1",
    *,
    load_default_amis: bool = False,
    timeout: float = 30.0,
) -> tuple[subprocess.Popen, str]:
    """Start moto_server (from this interpreter's venv) and wait until it answers.

    Returns the process and the endpoint URL. The default AMIs are off unless asked for: moto
    ignores DescribeSnapshots' OwnerIds, so their snapshots would show up as every account's own.
    The server's log goes to an unnamed temporary file (a pipe nobody reads would fill and stall
    it); its tail is in the error if the server dies or does not answer in time.
    """
    executable = Path(sys.executable).parent / "moto_server"
    if not executable.exists():
        raise FileNotFoundError(f"{executable} not found: install moto[server] in this venv")
    port = _free_port(host) if port is None else port
    env = dict(os.environ)
    env["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "true" if load_default_amis else "false"
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server; closed in stop
    proc = subprocess.Popen(  # noqa: S603 - our own venv's console script, fixed arguments
        [str(executable), "-H", host, "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    proc.tagsense_log = log  # type: ignore[attr-defined]
    endpoint = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = _log_tail(proc)
            log.close()
            raise RuntimeError(f"moto_server exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return proc, endpoint
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            tail = _log_tail(proc)
            stop_moto_server(proc)
            raise TimeoutError(f"moto_server did not answer on {endpoint} in {timeout}s:\n{tail}")
        time.sleep(0.1)


def stop_moto_server(proc: subprocess.Popen) -> None:
    """Stop a server started by start_moto_server (terminate, then kill after 10 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    log = getattr(proc, "tagsense_log", None)
    if log is not None:
        log.close()


def reset_moto(endpoint_url: str) -> None:
    """Forget everything the moto server holds (its POST /moto-api/reset)."""
    _check_endpoint(endpoint_url)
    url = f"{endpoint_url.rstrip('/')}/moto-api/reset"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - http(s), checked above
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
        pass


def _check_endpoint(endpoint_url: str) -> None:
    parsed = urlparse(endpoint_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"not an endpoint URL: {endpoint_url!r}")
    if parsed.hostname.endswith(("amazonaws.com", "amazonaws.com.cn", "api.aws")):
        raise ValueError("seed_estate only seeds a moto server, never real AWS")


# --- the estate's shape ---------------------------------------------------------------------


@dataclass(frozen=True)
class AccountPlan:
    slug: str
    name: str
    ou: str
    prefix: str  # short, for names with length limits
    environments: tuple[tuple[str, int], ...]  # (value, weight)
    apps: tuple[str, ...]
    weight: float  # share of the cheap resources
    # Expensive resources, by the account's region index (0 = its primary region).
    placements: dict[int, tuple[str, ...]] = field(default_factory=dict)
    distributions: tuple[str, ...] = ()  # CloudFront origins: "s3" or "alb"


OUS = ("Production", "Development", "Security")

ACCOUNT_PLANS = (
    AccountPlan(
        "prod-workloads",
        "Prod Workloads",
        "Production",
        "pw",
        (("prod", 9), ("staging", 1)),
        ("checkout", "catalog", "search", "web-frontend", "payments-api", "identity"),
        0.35,
        {0: ("alb", "ecs", "rds-mysql", "elasticache", "efs"), 1: ("classic-elb", "eks")},
        ("s3", "alb"),
    ),
    AccountPlan(
        "prod-data",
        "Prod Data",
        "Production",
        "pd",
        (("prod", 1),),
        ("data-lake", "etl", "reporting", "analytics"),
        0.25,
        {0: ("nlb", "rds-aurora", "elasticache"), 1: ("efs",)},
    ),
    AccountPlan(
        "development",
        "Development",
        "Development",
        "dev",
        (("dev", 7), ("staging", 3)),
        ("checkout", "catalog", "search", "sandbox", "ml-experiments"),
        0.28,
        {0: ("alb", "ecs", "eks", "rds-postgres"), 1: ("classic-elb", "elasticache")},
        ("s3",),
    ),
    AccountPlan(
        "security",
        "Security Tooling",
        "Security",
        "sec",
        (("prod", 1),),
        ("siem", "log-archive", "vpn", "guardduty-export"),
        0.12,
        {0: ("efs",)},
    ),
)

# Every application's owner, cost center and data classification: the "right" tag values.
APPS = {
    "checkout": ("payments-team@example.com", "CC-1010", "confidential"),
    "catalog": ("catalog-team@example.com", "CC-1020", "internal"),
    "search": ("search-team@example.com", "CC-1020", "internal"),
    "web-frontend": ("web-team@example.com", "CC-1030", "public"),
    "payments-api": ("payments-team@example.com", "CC-1010", "restricted"),
    "identity": ("identity-team@example.com", "CC-1040", "restricted"),
    "data-lake": ("data-eng@example.com", "CC-2010", "confidential"),
    "etl": ("data-eng@example.com", "CC-2010", "confidential"),
    "reporting": ("bi-team@example.com", "CC-2020", "internal"),
    "analytics": ("bi-team@example.com", "CC-2020", "confidential"),
    "sandbox": ("platform-team@example.com", "CC-3010", "internal"),
    "ml-experiments": ("ml-team@example.com", "CC-3020", "confidential"),
    "siem": ("security-ops@example.com", "CC-4010", "restricted"),
    "log-archive": ("security-ops@example.com", "CC-4010", "restricted"),
    "vpn": ("network-team@example.com", "CC-4020", "internal"),
    "guardduty-export": ("security-ops@example.com", "CC-4010", "restricted"),
    "core-network": ("network-team@example.com", "CC-4020", "internal"),
}

REQUIRED_KEYS = ("Owner", "Environment", "CostCenter", "Application", "DataClassification")

# Tag hygiene: a shuffled deck of 100 cards per account, so the shares hold even for a small
# estate: 60% fully tagged, 13% never tagged, the rest sloppy.
HYGIENE = (("full", 60), ("case-variant", 9), ("misspelt", 8), ("partial", 10), ("untagged", 13))
KEY_VARIANTS = {
    "Owner": ("owner", "OWNER"),
    "Environment": ("env", "environment", "ENV", "Env"),
    "CostCenter": ("costcenter", "cost-center", "COSTCENTER"),
    "Application": ("application", "app", "App"),
    "DataClassification": ("dataclassification", "data-classification"),
}
VALUE_MISSPELLINGS = {
    "prod": ("prdo", "Prodution", "prod ", "Production"),
    "staging": ("stagign", "Staging", "stage"),
    "dev": ("dvelopment", "Dev", "devel"),
    "confidential": ("confidental", "Confidential"),
    "internal": ("interal", "Internal"),
    "restricted": ("restricetd",),
    "public": ("pubic", "Public"),
}

INSTANCE_TYPES = ("t3.micro", "t3.small", "t3.medium", "m6i.large", "m6i.xlarge", "c6i.large")
LAMBDA_ZIP_SOURCE = "def handler(event, context):\n    return {'statusCode': 200}\n"


def _tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict]:
    return [{key: k, value: v} for k, v in tags.items()]


def _spec(resource_type: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    """EC2 TagSpecifications for one resource type; none for no tags."""
    return [{"ResourceType": resource_type, "Tags": _tag_list(tags)}] if tags else []


def _largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """total split in proportion to weights, in whole numbers that add up to total."""
    if total <= 0 or not weights:
        return [0] * len(weights)
    scale = sum(weights)
    exact = [total * w / scale for w in weights]
    parts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


class Tagger:
    """Tags for one account's resources: coherent per application, sloppy per the deck."""

    def __init__(self, rng: random.Random, plan: AccountPlan):
        self.rng = rng
        self.plan = plan
        self.deck: list[str] = []
        self.hygiene: Counter[str] = Counter()

    def environment(self) -> str:
        values, weights = zip(*self.plan.environments, strict=True)
        return self.rng.choices(values, weights)[0]

    def card(self) -> str:
        if not self.deck:
            self.deck = [name for name, count in HYGIENE for _ in range(count)]
            self.rng.shuffle(self.deck)
        return self.deck.pop()

    def tags(self, app: str, environment: str | None = None, name: str = "") -> dict[str, str]:
        """One resource's tags: the app's correct tags, spoiled per the next card."""
        owner, cost_center, classification = APPS[app]
        correct = {
            "Owner": owner,
            "Environment": environment or self.environment(),
            "CostCenter": cost_center,
            "Application": app,
            "DataClassification": classification,
        }
        card = self.card()
        self.hygiene[card] += 1
        rng = self.rng
        if card == "untagged":
            return {}
        if card == "case-variant":
            renamed = set(rng.sample(REQUIRED_KEYS, rng.randint(1, 2)))
            tags = {
                (rng.choice(KEY_VARIANTS[key]) if key in renamed else key): value
                for key, value in correct.items()
            }
        elif card == "misspelt":
            tags = dict(correct)
            key = "Environment" if rng.random() < 0.75 else "DataClassification"
            tags[key] = rng.choice(VALUE_MISSPELLINGS[tags[key]])
        elif card == "partial":
            dropped = set(rng.sample(REQUIRED_KEYS, rng.randint(1, 3)))
            tags = {key: value for key, value in correct.items() if key not in dropped}
        else:
            tags = correct
        return {"Name": name, **tags} if name else tags


# --- seeding ---------------------------------------------------------------------------------


@dataclass
class EstateSummary:
    management_account_id: str
    organization_id: str
    # [{"account_id", "name", "ou_path", "role_arn", "regions"}], role_arn is TagSenseReadOnly's.
    accounts: list[dict[str, Any]]
    # Resources in the member accounts per resource type, counted through the AWS APIs after
    # seeding, without the ones AWS makes by itself (see defaults).
    counts: dict[str, int]
    total: int
    # Made by AWS (moto), not by the seeder, and found by a scan too: each region's default VPC
    # and its subnets, and the default security group of every VPC.
    defaults: dict[str, int] = field(default_factory=dict)
    # How many resources drew each tag-hygiene card (resources tagged through the Tagger).
    hygiene: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    api_calls: int = 0
    notes: list[str] = field(default_factory=list)


class EstateError(RuntimeError):
    pass


@dataclass
class _Site:
    """One member account in one region."""

    region: str
    index: int  # the region's index for this account, 0 = primary
    number: int  # unique across the estate: the VPC's second CIDR octet
    vpc: str = ""
    subnets: dict[str, tuple[str, str]] = field(default_factory=dict)  # name: (id, AZ)
    groups: dict[str, str] = field(default_factory=dict)  # name: security group id
    instances: list[tuple[str, str, str]] = field(default_factory=list)  # (id, AZ, app)
    volumes: list[str] = field(default_factory=list)
    golden_ami: str = ""
    alb_arn: str = ""
    alb_dns: str = ""
    alb_listener: str = ""
    db_subnet_group: str = ""
    devices: dict[str, int] = field(default_factory=dict)  # instance id: data volumes attached


class _Member:
    """A member account: its session, clients and the sites (regions) it uses."""

    def __init__(self, seeder: _Seeder, plan: AccountPlan, account_id: str, rng: random.Random):
        self.seeder = seeder
        self.plan = plan
        self.account_id = account_id
        self.rng = rng
        self.tagger = Tagger(rng, plan)
        self.ou_path = f"Root/{plan.ou}"
        self.sites: dict[str, _Site] = {}
        self.roles: dict[str, str] = {}
        self.counter = 0
        self._clients: dict[tuple[str, str], BaseClient] = {}
        self.credentials: dict[str, str] = {}

    def login(self) -> None:
        """Credentials inside the account, by assuming OrganizationAccountAccessRole."""
        role_arn = f"arn:aws:iam::{self.account_id}:role/{ACCESS_ROLE}"
        sts = self.seeder.client("sts", DEFAULT_REGIONS[0])
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="tagsense-demo-seed")[
            "Credentials"
        ]
        self.credentials = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
        self._clients.clear()

    def client(self, service: str, region: str) -> BaseClient:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self.seeder.make_client(service, region, self.credentials)
        return self._clients[key]

    def next(self) -> int:
        self.counter += 1
        return self.counter


class _Seeder:
    def __init__(
        self,
        endpoint_url: str,
        resources: int,
        seed: int,
        regions: Sequence[str],
        external_id: str,
    ):
        _check_endpoint(endpoint_url)
        if not regions:
            raise ValueError("at least one region")
        self.endpoint_url = endpoint_url.rstrip("/")
        self.resources = resources
        self.seed = seed
        self.regions = tuple(regions)
        self.external_id = external_id
        self.created: Counter[str] = Counter()
        self.api_calls = 0
        self.members: list[_Member] = []
        # One session for every account (credentials go to each client): clients of a
        # session share their service models and classes, so making one is cheaper.
        core = botocore.session.get_session()
        core.register_component("data_loader", _LOADER)
        self._session = boto3.Session(botocore_session=core)
        self._mgmt_clients: dict[tuple[str, str], BaseClient] = {}
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("handler.py", LAMBDA_ZIP_SOURCE)
        self.lambda_zip = zipped.getvalue()

    # clients

    def count_call(self, **_: Any) -> None:
        self.api_calls += 1

    def make_client(self, service: str, region: str, credentials: dict[str, str]) -> BaseClient:
        client = self._session.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            config=_CLIENT_CONFIG,
            **credentials,
        )
        client.meta.events.register("before-call.*.*", self.count_call)
        return client

    def client(self, service: str, region: str) -> BaseClient:
        """A client in the management account."""
        key = (service, region)
        if key not in self._mgmt_clients:
            self._mgmt_clients[key] = self.make_client(service, region, MANAGEMENT_CREDENTIALS)
        return self._mgmt_clients[key]

    # the organization

    def organization(self) -> tuple[str, dict[str, str]]:
        org = self.client("organizations", "us-east-1")
        try:
            existing = org.describe_organization()["Organization"]
        except org.exceptions.AWSOrganizationsNotInUseException:
            existing = None
        if existing:
            raise EstateError(
                f"{self.endpoint_url} already holds organization {existing['Id']}: seed a fresh "
                "moto server, or reset it first (POST /moto-api/reset, or --reset)"
            )
        organization = org.create_organization(FeatureSet="ALL")["Organization"]
        if organization["MasterAccountId"] != MANAGEMENT_ACCOUNT_ID:
            raise EstateError(f"unexpected management account {organization['MasterAccountId']}")
        root = org.list_roots()["Roots"][0]["Id"]
        ous = {
            name: org.create_organizational_unit(
                ParentId=root, Name=name, Tags=[{"Key": "Owner", "Value": "cloud-platform"}]
            )["OrganizationalUnit"]["Id"]
            for name in OUS
        }
        for plan in ACCOUNT_PLANS:
            status = org.create_account(
                Email=f"aws+{plan.slug}@example.com",
                AccountName=plan.name,
                RoleName=ACCESS_ROLE,
                Tags=[
                    {"Key": "Owner", "Value": "cloud-platform@example.com"},
                    {"Key": "Environment", "Value": plan.environments[0][0]},
                ],
            )["CreateAccountStatus"]
            if status["State"] != "SUCCEEDED":  # moto completes at once; AWS would be polled
                raise EstateError(f"account {plan.name}: {status}")
            account_id = status["AccountId"]
            org.move_account(
                AccountId=account_id, SourceParentId=root, DestinationParentId=ous[plan.ou]
            )
            rng = random.Random(f"{self.seed}:{plan.slug}")
            self.members.append(_Member(self, plan, account_id, rng))
        return organization["Id"], ous

    def roles(self, member: _Member) -> None:
        iam = member.client("iam", "us-east-1")
        management = f"arn:aws:iam::{MANAGEMENT_ACCOUNT_ID}:root"

        def trust(principal: dict[str, str], condition: dict | None = None) -> str:
            statement: dict[str, Any] = {
                "Effect": "Allow",
                "Principal": principal,
                "Action": "sts:AssumeRole",
            }
            if condition:
                statement["Condition"] = condition
            return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

        def policy(actions: list[str]) -> str:
            statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
            return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

        # Organizations made OrganizationAccountAccessRole with the account (moto does too);
        # make it only if it is missing, with the trust policy AWS gives it. Inline policies:
        # moto loads AWS managed policies (AdministratorAccess, ReadOnlyAccess) only with
        # MOTO_IAM_LOAD_MANAGED_POLICIES=true, and a server started by hand may lack it.
        try:
            iam.get_role(RoleName=ACCESS_ROLE)
        except iam.exceptions.NoSuchEntityException:
            iam.create_role(
                RoleName=ACCESS_ROLE, AssumeRolePolicyDocument=trust({"AWS": management})
            )
            iam.put_role_policy(
                RoleName=ACCESS_ROLE, PolicyName="Administrator", PolicyDocument=policy(["*"])
            )
        condition = (
            {"StringEquals": {"sts:ExternalId": self.external_id}} if self.external_id else None
        )
        role = iam.create_role(
            RoleName=READ_ONLY_ROLE,
            AssumeRolePolicyDocument=trust({"AWS": management}, condition),
            Description="TagSense inventory scans (read-only)",
            Tags=[{"Key": "Owner", "Value": "cloud-platform@example.com"}],
        )["Role"]
        iam.put_role_policy(
            RoleName=READ_ONLY_ROLE,
            PolicyName="TagSenseInventoryRead",
            PolicyDocument=policy(READ_ONLY_ACTIONS),
        )
        member.roles[READ_ONLY_ROLE] = role["Arn"]
        for name, service in (
            ("lambda-exec", "lambda.amazonaws.com"),
            ("eks-cluster", "eks.amazonaws.com"),
            ("eks-node", "ec2.amazonaws.com"),
            ("ecs-task-exec", "ecs-tasks.amazonaws.com"),
        ):
            member.roles[name] = iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=trust({"Service": service})
            )["Role"]["Arn"]

    # networks and instances

    def network(self, member: _Member, site: _Site) -> None:
        ec2 = member.client("ec2", site.region)
        tagger, prefix = member.tagger, member.plan.prefix
        env = tagger.environment()
        vpc_tags = tagger.tags("core-network", env, f"{prefix}-{site.region}-vpc")
        site.vpc = ec2.create_vpc(
            CidrBlock=f"10.{site.number}.0.0/16", TagSpecifications=_spec("vpc", vpc_tags)
        )["Vpc"]["VpcId"]
        self.created["ec2:vpc"] += 1
        layout = [("private-a", "a", 0), ("private-b", "b", 1)]
        if site.index == 0:
            layout += [("public-a", "a", 10), ("public-b", "b", 11)]
        for name, zone, octet in layout:
            tags = tagger.tags("core-network", env, f"{prefix}-{name}")
            subnet = ec2.create_subnet(
                VpcId=site.vpc,
                CidrBlock=f"10.{site.number}.{octet}.0/24",
                AvailabilityZone=f"{site.region}{zone}",
                TagSpecifications=_spec("subnet", tags),
            )["Subnet"]
            site.subnets[name] = (subnet["SubnetId"], subnet["AvailabilityZone"])
            self.created["ec2:subnet"] += 1
        for name in ("app", "web", "db") if site.index == 0 else ("app",):
            tags = tagger.tags("core-network", env, f"{prefix}-{name}")
            site.groups[name] = ec2.create_security_group(
                GroupName=f"{prefix}-{name}",
                Description=f"{name} tier",
                VpcId=site.vpc,
                TagSpecifications=_spec("security-group", tags),
            )["GroupId"]
            self.created["ec2:security-group"] += 1

    def fleet(
        self,
        member: _Member,
        site: _Site,
        app: str,
        count: int,
        subnet: str = "private-a",
        group: str = "app",
    ) -> list[str]:
        """count instances of one app, launched in one call and tagged in a few.

        An instance and its root volume each draw their own hygiene card; the resources that
        end up with the same tags are tagged by one CreateTags call.
        """
        ec2 = member.client("ec2", site.region)
        rng, tagger = member.rng, member.tagger
        env = tagger.environment()
        subnet_id, zone = site.subnets[subnet]
        groups = [site.groups[group]]
        if group != "app":
            groups.append(site.groups["app"])
        response = ec2.run_instances(
            ImageId=site.golden_ami or PUBLIC_AMI,
            MinCount=count,
            MaxCount=count,
            InstanceType=rng.choice(INSTANCE_TYPES),
            SubnetId=subnet_id,
            SecurityGroupIds=groups,
        )
        by_tags: dict[tuple, list[str]] = {}
        ids = []
        for instance in response["Instances"]:
            instance_id = instance["InstanceId"]
            ids.append(instance_id)
            site.instances.append((instance_id, zone, app))
            tags = tagger.tags(app, env, f"{app}-{env}")
            by_tags.setdefault(tuple(tags.items()), []).append(instance_id)
            for mapping in instance.get("BlockDeviceMappings", []):
                volume_id = mapping.get("Ebs", {}).get("VolumeId")
                if volume_id:
                    site.volumes.append(volume_id)
                    self.created["ec2:volume"] += 1
                    tags = tagger.tags(app, env, f"{app}-{env}-root")
                    by_tags.setdefault(tuple(tags.items()), []).append(volume_id)
        self.created["ec2:instance"] += len(ids)
        for tags, resource_ids in by_tags.items():
            if tags:
                ec2.create_tags(Resources=resource_ids, Tags=_tag_list(dict(tags)))
        return ids

    def image(self, member: _Member, site: _Site, instance: tuple[str, str, str]) -> str:
        ec2 = member.client("ec2", site.region)
        instance_id, _, app = instance
        tags = member.tagger.tags(app)
        image_id = ec2.create_image(
            InstanceId=instance_id,
            Name=f"{app}-{member.next():04d}",
            Description=f"{app} image",
            TagSpecifications=_spec("image", tags),
        )["ImageId"]
        # AWS and moto both snapshot the instance's storage for the AMI (see the module doc).
        self.created["ec2:image"] += 1
        self.created["ec2:snapshot"] += 1
        return image_id

    def data_volume(self, member: _Member, site: _Site) -> None:
        ec2 = member.client("ec2", site.region)
        rng = member.rng
        instance_id, zone, app = rng.choice(site.instances)
        tags = member.tagger.tags(app, name=f"{app}-data")
        volume_id = ec2.create_volume(
            AvailabilityZone=zone,
            Size=rng.choice((20, 50, 100, 200, 500)),
            VolumeType=rng.choice(("gp3", "gp3", "gp2")),
            TagSpecifications=_spec("volume", tags),
        )["VolumeId"]
        site.volumes.append(volume_id)
        self.created["ec2:volume"] += 1
        attached = site.devices.get(instance_id, 0)
        # About a third stay unattached: the orphaned volumes a cost review looks for.
        if rng.random() < 0.65 and attached < 10:
            ec2.attach_volume(
                VolumeId=volume_id,
                InstanceId=instance_id,
                Device=f"/dev/sd{'fghijklmnop'[attached]}",
            )
            site.devices[instance_id] = attached + 1

    def snapshot(self, member: _Member, site: _Site) -> None:
        ec2 = member.client("ec2", site.region)
        rng = member.rng
        volume_id = rng.choice(site.volumes)
        app = rng.choice(member.plan.apps)
        tags = member.tagger.tags(app)
        ec2.create_snapshot(
            VolumeId=volume_id,
            Description=f"{rng.choice(('nightly', 'weekly', 'pre-upgrade'))} backup",
            TagSpecifications=_spec("snapshot", tags),
        )
        self.created["ec2:snapshot"] += 1

    # cheap non-EC2 resources

    def bucket(self, member: _Member, site: _Site, purpose: str = "") -> str:
        s3 = member.client("s3", site.region)
        rng = member.rng
        app = rng.choice(member.plan.apps)
        purpose = purpose or rng.choice(("logs", "artifacts", "exports", "backups", "uploads"))
        name = f"{member.plan.prefix}-{app}-{purpose}-{member.next():04d}-{member.account_id}"
        kwargs: dict[str, Any] = {"Bucket": name}
        if site.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": site.region}
        s3.create_bucket(**kwargs)
        tags = member.tagger.tags(app)
        if tags:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tag_list(tags)})
        self.created["s3:bucket"] += 1
        return name

    def table(self, member: _Member, site: _Site) -> None:
        dynamodb = member.client("dynamodb", site.region)
        rng = member.rng
        app = rng.choice(member.plan.apps)
        thing = rng.choice(("sessions", "orders", "events", "state", "cache", "jobs"))
        kwargs: dict[str, Any] = {
            "TableName": f"{app}-{thing}-{member.next():04d}",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        }
        if rng.random() < 0.7:
            kwargs["BillingMode"] = "PAY_PER_REQUEST"
        else:
            kwargs["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        tags = member.tagger.tags(app)
        if tags:
            kwargs["Tags"] = _tag_list(tags)
        dynamodb.create_table(**kwargs)
        self.created["dynamodb:table"] += 1

    def function(self, member: _Member, site: _Site) -> None:
        client = member.client("lambda", site.region)
        rng = member.rng
        app = rng.choice(member.plan.apps)
        verb = rng.choice(("ingest", "resize", "notify", "sync", "cleanup", "webhook"))
        kwargs: dict[str, Any] = {
            "FunctionName": f"{app}-{verb}-{member.next():04d}",
            "Runtime": rng.choice(("python3.12", "python3.11", "nodejs20.x")),
            "Role": member.roles["lambda-exec"],
            "Handler": "handler.handler",
            "Code": {"ZipFile": self.lambda_zip},
            "MemorySize": rng.choice((128, 256, 512, 1024)),
            "Timeout": rng.choice((3, 15, 30, 60)),
        }
        if rng.random() < 0.6:  # most functions run in the VPC's private subnets
            kwargs["VpcConfig"] = {
                "SubnetIds": [site.subnets["private-a"][0], site.subnets["private-b"][0]],
                "SecurityGroupIds": [site.groups["app"]],
            }
        tags = member.tagger.tags(app)
        if tags:
            kwargs["Tags"] = tags
        client.create_function(**kwargs)
        self.created["lambda:function"] += 1

    # a handful of each expensive type

    def place(self, member: _Member, site: _Site, kind: str) -> None:
        getattr(self, "_" + kind.replace("-", "_"))(member, site)

    def _alb(self, member: _Member, site: _Site) -> None:
        elbv2 = member.client("elbv2", site.region)
        prefix, tagger = member.plan.prefix, member.tagger
        app = member.plan.apps[0]
        web = self.fleet(member, site, app, 2, "private-a", "web")
        web += self.fleet(member, site, app, 2, "private-b", "web")
        lb = elbv2.create_load_balancer(
            Name=f"{prefix}-web-alb",
            Subnets=[site.subnets["public-a"][0], site.subnets["public-b"][0]],
            SecurityGroups=[site.groups["web"]],
            Scheme="internet-facing",
            Type="application",
            **_optional_tags(tagger.tags(app)),
        )["LoadBalancers"][0]
        site.alb_arn, site.alb_dns = lb["LoadBalancerArn"], lb["DNSName"]
        group = elbv2.create_target_group(
            Name=f"{prefix}-web-tg",
            Protocol="HTTP",
            Port=80,
            VpcId=site.vpc,
            TargetType="instance",
            HealthCheckPath="/health",
            **_optional_tags(tagger.tags(app)),
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": i, "Port": 80} for i in web])
        site.alb_listener = elbv2.create_listener(
            LoadBalancerArn=site.alb_arn,
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
        )["Listeners"][0]["ListenerArn"]
        self.created["elasticloadbalancing:loadbalancer"] += 1
        self.created["elasticloadbalancing:targetgroup"] += 1

    def _nlb(self, member: _Member, site: _Site) -> None:
        elbv2 = member.client("elbv2", site.region)
        prefix, tagger = member.plan.prefix, member.tagger
        app = member.plan.apps[1]
        targets = self.fleet(member, site, app, 3, "private-b")
        lb = elbv2.create_load_balancer(
            Name=f"{prefix}-ingest-nlb",
            Subnets=[site.subnets["private-a"][0], site.subnets["private-b"][0]],
            Scheme="internal",
            Type="network",
            **_optional_tags(tagger.tags(app)),
        )["LoadBalancers"][0]
        group = elbv2.create_target_group(
            Name=f"{prefix}-ingest-tg",
            Protocol="TCP",
            Port=443,
            VpcId=site.vpc,
            TargetType="instance",
            **_optional_tags(tagger.tags(app)),
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": i} for i in targets])
        elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="TCP",
            Port=443,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
        )
        self.created["elasticloadbalancing:loadbalancer"] += 1
        self.created["elasticloadbalancing:targetgroup"] += 1

    def _classic_elb(self, member: _Member, site: _Site) -> None:
        elb = member.client("elb", site.region)
        app = member.plan.apps[-1]
        targets = self.fleet(member, site, app, 2, "private-a")
        name = f"{member.plan.prefix}-legacy-elb"
        elb.create_load_balancer(
            LoadBalancerName=name,
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
            Subnets=[site.subnets["private-a"][0], site.subnets["private-b"][0]],
            SecurityGroups=[site.groups["app"]],
            Scheme="internal",
            **_optional_tags(member.tagger.tags(app)),
        )
        elb.register_instances_with_load_balancer(
            LoadBalancerName=name, Instances=[{"InstanceId": i} for i in targets]
        )
        self.created["elb:loadbalancer"] += 1

    def _ecs(self, member: _Member, site: _Site) -> None:
        ecs = member.client("ecs", site.region)
        prefix, tagger = member.plan.prefix, member.tagger
        app = member.plan.apps[0]
        cluster = ecs.create_cluster(
            clusterName=f"{prefix}-apps",
            **_optional_tags(tagger.tags(app), "tags", "key", "value"),
        )["cluster"]["clusterArn"]
        self.created["ecs:cluster"] += 1
        services = ("storefront", "order-worker") if site.index == 0 else ("storefront",)
        if member.plan.slug != "prod-workloads":
            services = ("storefront",)
        for service in services:
            task = ecs.register_task_definition(
                family=f"{prefix}-{service}",
                networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"],
                cpu="256",
                memory="512",
                executionRoleArn=member.roles["ecs-task-exec"],
                containerDefinitions=[
                    {
                        "name": service,
                        "image": f"public.ecr.aws/nginx/nginx:{service}",
                        "portMappings": [{"containerPort": 8080}],
                    }
                ],
            )["taskDefinition"]["taskDefinitionArn"]
            kwargs: dict[str, Any] = {}
            if service == "storefront" and site.alb_listener:
                elbv2 = member.client("elbv2", site.region)
                group = elbv2.create_target_group(
                    Name=f"{prefix}-{service}-tg",
                    Protocol="HTTP",
                    Port=8080,
                    VpcId=site.vpc,
                    TargetType="ip",
                    **_optional_tags(tagger.tags(app)),
                )["TargetGroups"][0]["TargetGroupArn"]
                elbv2.create_rule(
                    ListenerArn=site.alb_listener,
                    Priority=10,
                    Conditions=[{"Field": "path-pattern", "Values": ["/shop/*"]}],
                    Actions=[{"Type": "forward", "TargetGroupArn": group}],
                )
                self.created["elasticloadbalancing:targetgroup"] += 1
                kwargs["loadBalancers"] = [
                    {"targetGroupArn": group, "containerName": service, "containerPort": 8080}
                ]
            ecs.create_service(
                cluster=cluster,
                serviceName=service,
                taskDefinition=task,
                desiredCount=member.rng.randint(2, 6),
                launchType="FARGATE",
                networkConfiguration={
                    "awsvpcConfiguration": {
                        "subnets": [site.subnets["private-a"][0], site.subnets["private-b"][0]],
                        "securityGroups": [site.groups["app"]],
                        "assignPublicIp": "DISABLED",
                    }
                },
                **kwargs,
                **_optional_tags(tagger.tags(app), "tags", "key", "value"),
            )
            self.created["ecs:service"] += 1

    def _eks(self, member: _Member, site: _Site) -> None:
        eks = member.client("eks", site.region)
        prefix, tagger = member.plan.prefix, member.tagger
        app = member.plan.apps[2]
        subnets = [site.subnets["private-a"][0], site.subnets["private-b"][0]]
        name = f"{prefix}-platform"
        eks.create_cluster(
            name=name,
            version="1.30",
            roleArn=member.roles["eks-cluster"],
            resourcesVpcConfig={"subnetIds": subnets, "securityGroupIds": [site.groups["app"]]},
            **_optional_tags(tagger.tags(app), "tags", mapping=True),
        )
        self.created["eks:cluster"] += 1
        groups = ("general", "spot") if member.plan.slug == "prod-workloads" else ("general",)
        for group in groups:
            eks.create_nodegroup(
                clusterName=name,
                nodegroupName=group,
                nodeRole=member.roles["eks-node"],
                subnets=subnets,
                scalingConfig={"minSize": 2, "maxSize": 6, "desiredSize": 3},
                instanceTypes=["m6i.large"],
                capacityType="SPOT" if group == "spot" else "ON_DEMAND",
                **_optional_tags(tagger.tags(app), "tags", mapping=True),
            )
            self.created["eks:nodegroup"] += 1

    def _db_subnet_group(self, member: _Member, site: _Site) -> str:
        if not site.db_subnet_group:
            rds = member.client("rds", site.region)
            site.db_subnet_group = f"{member.plan.prefix}-db-subnets"
            rds.create_db_subnet_group(
                DBSubnetGroupName=site.db_subnet_group,
                DBSubnetGroupDescription="private subnets for databases",
                SubnetIds=[site.subnets["private-a"][0], site.subnets["private-b"][0]],
            )
        return site.db_subnet_group

    def _db_instance(
        self, member: _Member, site: _Site, name: str, engine: str, app: str, **extra: Any
    ) -> None:
        rds = member.client("rds", site.region)
        kwargs: dict[str, Any] = {
            "DBInstanceIdentifier": name,
            "DBInstanceClass": extra.pop("DBInstanceClass", "db.t3.medium"),
            "Engine": engine,
            **_optional_tags(member.tagger.tags(app)),
            # An Aurora member takes its cluster's subnet group; AWS shows it on the instance,
            # moto only if it is given again here.
            "DBSubnetGroupName": self._db_subnet_group(member, site),
            **extra,
        }
        if "DBClusterIdentifier" not in extra:
            kwargs.update(
                MasterUsername="dbadmin",
                MasterUserPassword=f"demo-{member.rng.getrandbits(64):016x}",
                AllocatedStorage=member.rng.choice((20, 100, 500)),
                VpcSecurityGroupIds=[site.groups.get("db", site.groups["app"])],
                StorageEncrypted=member.rng.random() < 0.8,
                MultiAZ=member.plan.environments[0][0] == "prod",
            )
        rds.create_db_instance(**kwargs)
        self.created["rds:db"] += 1

    def _rds_mysql(self, member: _Member, site: _Site) -> None:
        self._db_instance(member, site, "catalog-db", "mysql", "catalog")

    def _rds_postgres(self, member: _Member, site: _Site) -> None:
        self._db_instance(member, site, "shared-dev-db", "postgres", "sandbox")

    def _rds_aurora(self, member: _Member, site: _Site) -> None:
        self._db_instance(member, site, "etl-staging-db", "postgres", "etl")
        self._db_instance(member, site, "reporting-db", "postgres", "reporting")
        rds = member.client("rds", site.region)
        rds.create_db_cluster(
            DBClusterIdentifier="warehouse",
            Engine="aurora-postgresql",
            MasterUsername="dbadmin",
            MasterUserPassword=f"demo-{member.rng.getrandbits(64):016x}",
            DBSubnetGroupName=self._db_subnet_group(member, site),
            VpcSecurityGroupIds=[site.groups.get("db", site.groups["app"])],
            StorageEncrypted=True,
            **_optional_tags(member.tagger.tags("data-lake")),
        )
        self.created["rds:cluster"] += 1
        self._db_instance(
            member,
            site,
            "warehouse-1",
            "aurora-postgresql",
            "data-lake",
            DBClusterIdentifier="warehouse",
            DBInstanceClass="db.r6g.large",
        )

    def _elasticache(self, member: _Member, site: _Site) -> None:
        client = member.client("elasticache", site.region)
        app = member.rng.choice(member.plan.apps)
        engine = member.rng.choice(("redis", "memcached"))
        client.create_cache_cluster(
            CacheClusterId=f"{member.plan.prefix}-{app}-cache",
            Engine=engine,
            CacheNodeType="cache.t3.small",
            NumCacheNodes=1,
            SecurityGroupIds=[site.groups["app"]],
            **_optional_tags(member.tagger.tags(app)),
        )
        self.created["elasticache:cluster"] += 1

    def _efs(self, member: _Member, site: _Site) -> None:
        efs = member.client("efs", site.region)
        app = member.rng.choice(member.plan.apps)
        tags = member.tagger.tags(app, name=f"{app}-shared")
        file_system = efs.create_file_system(
            CreationToken=f"{member.plan.prefix}-{app}-{member.next()}",
            PerformanceMode="generalPurpose",
            Encrypted=True,
            **_optional_tags(tags),
        )["FileSystemId"]
        for subnet in ("private-a", "private-b"):
            efs.create_mount_target(
                FileSystemId=file_system,
                SubnetId=site.subnets[subnet][0],
                SecurityGroups=[site.groups["app"]],
            )
        self.created["elasticfilesystem:file-system"] += 1

    def distribution(self, member: _Member, origin: str) -> None:
        cloudfront = member.client("cloudfront", "us-east-1")
        primary = member.sites[self.region_of(member, 0)]
        app = member.plan.apps[0]
        if origin == "s3":
            bucket = self.bucket(member, primary, "static-assets")
            domain = f"{bucket}.s3.{primary.region}.amazonaws.com"
            origin_config: dict[str, Any] = {"S3OriginConfig": {"OriginAccessIdentity": ""}}
        else:
            domain = primary.alb_dns
            origin_config = {
                "CustomOriginConfig": {
                    "HTTPPort": 80,
                    "HTTPSPort": 443,
                    "OriginProtocolPolicy": "https-only",
                }
            }
        config = {
            "CallerReference": f"{member.plan.slug}-{origin}-{member.next()}",
            "Comment": f"{app} {origin} origin",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [{"Id": origin, "DomainName": domain, **origin_config}],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": origin,
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
        tags = member.tagger.tags(app)
        cloudfront.create_distribution_with_tags(
            DistributionConfigWithTags={
                "DistributionConfig": config,
                "Tags": {"Items": _tag_list(tags)},
            }
        )
        self.created["cloudfront:distribution"] += 1

    # the plan

    def region_of(self, member: _Member, index: int) -> str:
        position = ACCOUNT_PLANS.index(member.plan)
        return self.regions[(position + index) % len(self.regions)]

    def skeleton(self, member: _Member, number: int) -> int:
        """Networks, a first instance and a golden AMI per site; every expensive type."""
        for index in range(len(self.regions)):
            region = self.region_of(member, index)
            number += 1
            site = _Site(region=region, index=index, number=number)
            member.sites[region] = site
            self.network(member, site)
            app = member.rng.choice(member.plan.apps)
            self.fleet(member, site, app, 1, "private-a")
            if index == 0:
                site.golden_ami = self.image(member, site, site.instances[0])
        for index, kinds in sorted(member.plan.placements.items()):
            site = member.sites[self.region_of(member, index)]
            for kind in kinds:
                self.place(member, site, kind)
        for origin in member.plan.distributions:
            self.distribution(member, origin)
        return number

    def fill(self, member: _Member, site: _Site, budget: int, primary: bool) -> None:
        """budget cheap resources in one site, mostly instances and their volumes."""
        mix = {"instance": 0.46, "volume": 0.10, "snapshot": 0.12, "image": 0.06}
        mix |= {"bucket": 0.08, "table": 0.08, "function": 0.10}
        units = dict(zip(mix, _largest_remainder(budget, list(mix.values())), strict=True))
        instances = math.ceil(units["instance"] / 2)  # each comes with its root volume
        images = math.ceil(units["image"] / 2)  # each comes with its snapshot
        rng = member.rng
        while instances > 0:
            size = min(instances, rng.randint(2, 8))
            app = rng.choice(member.plan.apps)
            subnet = rng.choice(("private-a", "private-b"))
            self.fleet(member, site, app, size, subnet)
            instances -= size
        minimum = 1 if primary else 0  # one of each cheap type in every account
        for _ in range(max(units["volume"], minimum)):
            self.data_volume(member, site)
        for _ in range(images):
            self.image(member, site, rng.choice(site.instances))
        for _ in range(max(units["snapshot"], minimum)):
            self.snapshot(member, site)
        for _ in range(max(units["bucket"], minimum)):
            self.bucket(member, site)
        for _ in range(max(units["table"], minimum)):
            self.table(member, site)
        for _ in range(max(units["function"], minimum)):
            self.function(member, site)

    def run(self) -> EstateSummary:
        started = time.monotonic()
        organization_id, _ = self.organization()
        number = 0
        for member in self.members:
            member.login()
            self.roles(member)
            number = self.skeleton(member, number)
        budget = max(0, self.resources - sum(self.created.values()))
        shares = _largest_remainder(budget, [m.plan.weight for m in self.members])
        for member, share in zip(self.members, shares, strict=True):
            region_weights = [0.5, 0.3, 0.2][: len(self.regions)]
            region_weights += [0.2] * (len(self.regions) - len(region_weights))
            parts = _largest_remainder(share, region_weights)
            for index, part in enumerate(parts):
                site = member.sites[self.region_of(member, index)]
                self.fill(member, site, part, primary=index == 0)
        # Rounding leaves the count at or above the target; top up with tables if not.
        position = 0
        while sum(self.created.values()) < self.resources:
            member = self.members[position % len(self.members)]
            self.table(member, member.sites[self.region_of(member, position)])
            position += 1
        counts, defaults, foreign = self.census()
        notes = []
        for resource_type in RESOURCE_TYPES:
            if counts.get(resource_type, 0) != self.created.get(resource_type, 0):
                notes.append(
                    f"{resource_type}: {counts.get(resource_type, 0)} found, "
                    f"{self.created.get(resource_type, 0)} created"
                )
        if foreign:
            notes.append(
                f"{foreign} snapshots not owned by the member accounts are listed by "
                "DescribeSnapshots(OwnerIds=['self']) (moto ignores OwnerIds; these belong to "
                "moto's default AMIs): a scan will report them. Start moto_server with "
                "MOTO_EC2_LOAD_DEFAULT_AMIS=false to avoid them."
            )
        hygiene: Counter[str] = Counter()
        for member in self.members:
            hygiene.update(member.tagger.hygiene)
        return EstateSummary(
            management_account_id=MANAGEMENT_ACCOUNT_ID,
            organization_id=organization_id,
            accounts=[
                {
                    "account_id": m.account_id,
                    "name": m.plan.name,
                    "ou_path": m.ou_path,
                    "role_arn": m.roles[READ_ONLY_ROLE],
                    "regions": [self.region_of(m, i) for i in range(len(self.regions))],
                }
                for m in self.members
            ],
            counts={t: counts.get(t, 0) for t in RESOURCE_TYPES},
            total=sum(counts.values()),
            defaults=dict(defaults),
            hygiene={name: hygiene.get(name, 0) for name, _ in HYGIENE},
            seconds=round(time.monotonic() - started, 1),
            api_calls=self.api_calls,
            notes=notes,
        )

    # counting what is there

    def census(self) -> tuple[Counter[str], Counter[str], int]:
        """Every member account's resources per type, through the list/describe APIs."""
        counts: Counter[str] = Counter()
        defaults: Counter[str] = Counter()
        foreign = 0
        for member in self.members:
            for region in member.sites:
                client = member.client
                ec2 = client("ec2", region)
                for item in _items(ec2, "describe_instances", "Reservations"):
                    counts["ec2:instance"] += sum(
                        i["State"]["Name"] != "terminated" for i in item["Instances"]
                    )
                counts["ec2:volume"] += len(_items(ec2, "describe_volumes", "Volumes"))
                for snap in _items(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"]):
                    if snap.get("OwnerId") == member.account_id:
                        counts["ec2:snapshot"] += 1
                    else:
                        foreign += 1
                counts["ec2:image"] += len(_items(ec2, "describe_images", "Images", ["self"]))
                for vpc in _items(ec2, "describe_vpcs", "Vpcs"):
                    (defaults if vpc.get("IsDefault") else counts)["ec2:vpc"] += 1
                for subnet in _items(ec2, "describe_subnets", "Subnets"):
                    (defaults if subnet.get("DefaultForAz") else counts)["ec2:subnet"] += 1
                for group in _items(ec2, "describe_security_groups", "SecurityGroups"):
                    default = group.get("GroupName") == "default"
                    (defaults if default else counts)["ec2:security-group"] += 1
                elbv2 = client("elbv2", region)
                counts["elasticloadbalancing:loadbalancer"] += len(
                    _items(elbv2, "describe_load_balancers", "LoadBalancers")
                )
                counts["elasticloadbalancing:targetgroup"] += len(
                    _items(elbv2, "describe_target_groups", "TargetGroups")
                )
                counts["elb:loadbalancer"] += len(
                    _items(
                        client("elb", region), "describe_load_balancers", "LoadBalancerDescriptions"
                    )
                )
                counts["lambda:function"] += len(
                    _items(client("lambda", region), "list_functions", "Functions")
                )
                ecs = client("ecs", region)
                for cluster in _items(ecs, "list_clusters", "clusterArns"):
                    counts["ecs:cluster"] += 1
                    counts["ecs:service"] += len(
                        _items(ecs, "list_services", "serviceArns", cluster=cluster)
                    )
                eks = client("eks", region)
                for cluster in _items(eks, "list_clusters", "clusters"):
                    counts["eks:cluster"] += 1
                    counts["eks:nodegroup"] += len(
                        _items(eks, "list_nodegroups", "nodegroups", clusterName=cluster)
                    )
                rds = client("rds", region)
                counts["rds:db"] += len(_items(rds, "describe_db_instances", "DBInstances"))
                counts["rds:cluster"] += len(_items(rds, "describe_db_clusters", "DBClusters"))
                counts["dynamodb:table"] += len(
                    _items(client("dynamodb", region), "list_tables", "TableNames")
                )
                counts["elasticache:cluster"] += len(
                    _items(
                        client("elasticache", region), "describe_cache_clusters", "CacheClusters"
                    )
                )
                counts["elasticfilesystem:file-system"] += len(
                    _items(client("efs", region), "describe_file_systems", "FileSystems")
                )
            home = self.regions[0]
            counts["s3:bucket"] += len(member.client("s3", home).list_buckets()["Buckets"])
            distributions = member.client("cloudfront", home).list_distributions()
            counts["cloudfront:distribution"] += len(
                distributions.get("DistributionList", {}).get("Items", [])
            )
        return counts, defaults, foreign


def _optional_tags(
    tags: dict[str, str],
    parameter: str = "Tags",
    key: str = "Key",
    value: str = "Value",
    mapping: bool = False,
) -> dict[str, Any]:
    """The create call's tags argument, left out for an untagged resource."""
    if not tags:
        return {}
    return {parameter: dict(tags) if mapping else _tag_list(tags, key, value)}


def _items(client: BaseClient, operation: str, key: str, owners: Iterable[str] = (), **kwargs):
    """Every item of a paginated list/describe call."""
    if owners:
        kwargs["Owners"] = list(owners)
    items: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def seed_estate(
    endpoint_url: str,
    resources: int = 2000,
    seed: int = 7,
    regions: Sequence[str] = DEFAULT_REGIONS,
    *,
    external_id: str = "",
) -> EstateSummary:
    """Seed a demo estate of at least `resources` resources into the moto server at
    endpoint_url, which must not hold an organization yet. external_id, if given, becomes the
    sts:ExternalId condition of every TagSenseReadOnly role's trust policy."""
    return _Seeder(endpoint_url, resources, seed, regions, external_id).run()
