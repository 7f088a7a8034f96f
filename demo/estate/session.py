"""The seeding's state: one boto3 session for every account, the management account's clients,
the member accounts (Member) and their sites (Site: one account in one region), and what has
been created so far. The modules per AWS service build resources on a Member's Site."""

from __future__ import annotations

import io
import random
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config

from .moto import check_endpoint
from .plan import (
    ACCESS_ROLE,
    ACCOUNT_PLANS,
    DEFAULT_REGIONS,
    LAMBDA_ZIP_SOURCE,
    MANAGEMENT_CREDENTIALS,
    AccountPlan,
)
from .tagging import Tagger

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=120,
    max_pool_connections=4,
)
# One loader for every session: service models are parsed once, not once per account.
_LOADER = botocore.loaders.create_loader()


class EstateError(RuntimeError):
    pass


@dataclass
class Site:
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

    def private_subnets(self) -> list[str]:
        return [self.subnets["private-a"][0], self.subnets["private-b"][0]]


class Estate:
    """What is being seeded into one moto server: its clients and what has been created."""

    def __init__(
        self,
        endpoint_url: str,
        resources: int,
        seed: int,
        regions: Sequence[str],
        external_id: str,
    ):
        check_endpoint(endpoint_url)
        if not regions:
            raise ValueError("at least one region")
        self.endpoint_url = endpoint_url.rstrip("/")
        self.resources = resources
        self.seed = seed
        self.regions = tuple(regions)
        self.external_id = external_id
        self.created: Counter[str] = Counter()
        self.api_calls = 0
        self.members: list[Member] = []
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

    def region_of(self, member: Member, index: int) -> str:
        """The account's index-th region (0 = primary): the plans take turns at the first."""
        position = ACCOUNT_PLANS.index(member.plan)
        return self.regions[(position + index) % len(self.regions)]

    def site(self, member: Member, index: int) -> Site:
        return member.sites[self.region_of(member, index)]


class Member:
    """A member account: its session, clients and the sites (regions) it uses."""

    def __init__(self, estate: Estate, plan: AccountPlan, account_id: str, rng: random.Random):
        self.estate = estate
        self.plan = plan
        self.account_id = account_id
        self.rng = rng
        self.tagger = Tagger(rng, plan)
        self.ou_path = f"Root/{plan.ou}"
        self.sites: dict[str, Site] = {}
        self.roles: dict[str, str] = {}
        self.counter = 0
        self._clients: dict[tuple[str, str], BaseClient] = {}
        self.credentials: dict[str, str] = {}

    def login(self) -> None:
        """Credentials inside the account, by assuming OrganizationAccountAccessRole."""
        role_arn = f"arn:aws:iam::{self.account_id}:role/{ACCESS_ROLE}"
        sts = self.estate.client("sts", DEFAULT_REGIONS[0])
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
            self._clients[key] = self.estate.make_client(service, region, self.credentials)
        return self._clients[key]

    def next(self) -> int:
        self.counter += 1
        return self.counter

    def made(self, resource_type: str, count: int = 1) -> None:
        """Count resources created (the summary compares them with what a census finds)."""
        self.estate.created[resource_type] += count
