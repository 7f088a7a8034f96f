"""Sessions and clients: TagSense's own credentials from the standard boto3 chain; member
accounts through STS AssumeRole with the account's external id. No AWS secret is stored."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import botocore.utils
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError
from django.utils import timezone

# Adaptive retry mode: client-side rate limiting and backoff on throttling.
CLIENT_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=10,
    read_timeout=60,
    max_pool_connections=16,
    user_agent_extra="TagSense",
)
SESSION_NAME = "tagsense"
HOME_REGION = "us-east-1"


_loader = botocore.loaders.create_loader()


def _core_session() -> botocore.session.Session:
    """A botocore session sharing one loader: service models are parsed once per process,
    not once per session (EC2's alone takes a good fraction of a second)."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader)
    return core


def base_session(region: str = HOME_REGION) -> boto3.Session:
    return boto3.Session(botocore_session=_core_session(), region_name=region)


def _assume_role_fetcher(role_arn: str, external_id: str) -> Callable[[], dict[str, Any]]:
    def fetch() -> dict[str, Any]:
        sts = base_session().client("sts", config=CLIENT_CONFIG)
        kwargs = {"RoleArn": role_arn, "RoleSessionName": SESSION_NAME, "DurationSeconds": 3600}
        if external_id:
            kwargs["ExternalId"] = external_id
        credentials = sts.assume_role(**kwargs)["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    return fetch


class AccountCredentials:
    """Refreshing credentials for one account, shared by the threads that scan it."""

    def __init__(self, role_arn: str, external_id: str):
        self.role_arn = role_arn
        self.external_id = external_id
        self._lock = threading.Lock()
        self._credentials: RefreshableCredentials | None = None

    def get(self) -> RefreshableCredentials | None:
        if not self.role_arn:
            return None
        with self._lock:
            if self._credentials is None:
                fetch = _assume_role_fetcher(self.role_arn, self.external_id)
                self._credentials = RefreshableCredentials.create_from_metadata(
                    metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
                )
            return self._credentials


def timestamp_text(value: str | float) -> str:
    """A response timestamp as ISO 8601 text, as `jsonable` would write botocore's datetime,
    without dateutil: parsing three timestamps per EC2 instance with it was a third of
    botocore's whole parse of a DescribeInstances page (docs/benchmarks.md)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).isoformat()
    try:
        if value.replace(".", "", 1).isdigit():  # epoch seconds sent as text
            return datetime.fromtimestamp(float(value), UTC).isoformat()
        return datetime.fromisoformat(value).isoformat()
    except ValueError:
        return botocore.utils.parse_timestamp(value).isoformat()


def session_for(
    credentials: AccountCredentials | None, region: str, *, scanning: bool = False
) -> boto3.Session:
    """A new session (sessions are not thread-safe; one per unit of work). A scanning session's
    clients return timestamps as ISO text (scanners store them as text anyway), through
    botocore's own parser option, as the AWS CLI does."""
    refreshable = credentials.get() if credentials else None
    core = _core_session()
    if refreshable is not None:
        core._credentials = refreshable  # botocore's documented hook for custom credentials
    if scanning:
        core.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=timestamp_text
        )
    return boto3.Session(botocore_session=core, region_name=region)


@dataclass
class CallCounter:
    """Counts API calls made by the clients it is attached to."""

    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, **kwargs: Any) -> None:
        with self._lock:
            self.calls += 1

    def attach(self, client: BaseClient) -> BaseClient:
        client.meta.events.register("before-call.*.*", self)
        return client


def client_factory(session: boto3.Session, region: str, counter: CallCounter):
    clients: dict[str, BaseClient] = {}

    def client(service: str) -> BaseClient:
        if service not in clients:
            clients[service] = counter.attach(
                session.client(service, region_name=region, config=CLIENT_CONFIG)
            )
        return clients[service]

    return client


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    arn: str = ""
    account: str = ""
    error_code: str = ""
    error: str = ""
    checked_at: Any = None


def test_connection(role_arn: str, external_id: str) -> ConnectionResult:
    """Assume the role and ask STS who we are: the identity, or AWS's exact error."""

    now = timezone.now()
    try:
        session = session_for(AccountCredentials(role_arn, external_id), HOME_REGION)
        identity = session.client("sts", config=CLIENT_CONFIG).get_caller_identity()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return ConnectionResult(
            False,
            error_code=error.get("Code", ""),
            error=error.get("Message", str(exc)),
            checked_at=now,
        )
    except BotoCoreError as exc:
        return ConnectionResult(
            False, error_code=type(exc).__name__, error=str(exc), checked_at=now
        )
    return ConnectionResult(True, arn=identity["Arn"], account=identity["Account"], checked_at=now)


def enabled_regions(session: boto3.Session) -> list[str]:
    ec2 = session.client("ec2", region_name=HOME_REGION, config=CLIENT_CONFIG)
    regions = ec2.describe_regions(
        Filters=[{"Name": "opt-in-status", "Values": ["opt-in-not-required", "opted-in"]}]
    )["Regions"]
    return sorted(r["RegionName"] for r in regions)
