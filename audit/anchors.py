"""Anchors: each chain's head written, write-once, outside the database.

An anchor is an S3 object in a bucket created with Object Lock, put in COMPLIANCE mode with a
retain-until date: until then nobody, the bucket's owner and AWS's root user included, can
delete or overwrite that version. The object's key names the chain, the position and the hash
of the head it anchors, so verification needs only a listing:

    <AUDIT_ANCHOR_PREFIX><chain>/<seq, 20 digits>-<hash>.json    chain: org-<id> or global

Verification lists every version (list_object_versions), not only the latest: a delete
marker, which S3 lets anyone with s3:DeleteObject add even under Object Lock, hides an object
from a plain listing but not its locked version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from django.conf import settings
from django.utils import timezone

SESSION_NAME = "tagsense-audit-anchor"
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=10,
    read_timeout=30,
    user_agent_extra="TagSense",
)
_KEY = re.compile(r"(?P<seq>\d{20})-(?P<hash>[0-9a-f]{64})\.json")


class AnchorStoreError(Exception):
    """The anchor store could not be written or read."""


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    key: str
    version_id: str = ""
    anchored_at: datetime | None = None


def chain_label(organization_id: int | None) -> str:
    return "global" if organization_id is None else f"org-{organization_id}"


def unanchored_reason() -> str:
    """Empty when an anchor store is configured; else what an operator should read."""
    if settings.AUDIT_ANCHOR_BUCKET:
        return ""
    return (
        "audit chains are unanchored: no anchor store is configured (AUDIT_ANCHOR_BUCKET), "
        "so a rewrite of the history by the database owner, or a deleted tail, goes undetected"
    )


class AnchorStore:
    """One deployment's anchor bucket. Needs, for its credentials: s3:PutObject,
    s3:PutObjectRetention, s3:ListBucketVersions (and s3:ListBucket)."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        region: str = "",
        role_arn: str = "",
        retention_days: int = 2557,
    ):
        self.bucket = bucket
        self.prefix = prefix
        self.region = region or None
        self.role_arn = role_arn
        self.retention_days = retention_days
        self._client = None

    @classmethod
    def from_settings(cls) -> AnchorStore | None:
        if not settings.AUDIT_ANCHOR_BUCKET:
            return None
        return cls(
            settings.AUDIT_ANCHOR_BUCKET,
            prefix=settings.AUDIT_ANCHOR_PREFIX,
            region=settings.AUDIT_ANCHOR_REGION,
            role_arn=settings.AUDIT_ANCHOR_ROLE_ARN,
            retention_days=settings.AUDIT_ANCHOR_RETENTION_DAYS,
        )

    def client(self) -> Any:
        """An S3 client with the deployment's own credentials (the standard boto3 chain), or
        with AUDIT_ANCHOR_ROLE_ARN's assumed for this run."""
        if self._client is None:
            session = boto3.Session(region_name=self.region)
            if self.role_arn:
                credentials = session.client("sts", config=CLIENT_CONFIG).assume_role(
                    RoleArn=self.role_arn, RoleSessionName=SESSION_NAME, DurationSeconds=900
                )["Credentials"]
                session = boto3.Session(
                    aws_access_key_id=credentials["AccessKeyId"],
                    aws_secret_access_key=credentials["SecretAccessKey"],
                    aws_session_token=credentials["SessionToken"],
                    region_name=self.region,
                )
            self._client = session.client("s3", config=CLIENT_CONFIG)
        return self._client

    def _chain_prefix(self, organization_id: int | None) -> str:
        return f"{self.prefix}{chain_label(organization_id)}/"

    def put(self, organization_id: int | None, seq: int, head_hash: str) -> Anchor:
        """Write one head, locked in compliance mode until now + the retention period."""
        now = timezone.now()
        key = f"{self._chain_prefix(organization_id)}{seq:020d}-{head_hash}.json"
        body = {
            "chain": chain_label(organization_id),
            "organization_id": organization_id,
            "seq": seq,
            "hash": head_hash,
            "anchored_at": now.isoformat(),
        }
        try:
            response = self.client().put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(body, sort_keys=True).encode(),
                ContentType="application/json",
                ChecksumAlgorithm="SHA256",
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=now + timedelta(days=self.retention_days),
            )
        except Exception as exc:  # noqa: BLE001 - botocore's errors, the network's
            raise AnchorStoreError(f"could not write anchor {key}: {exc}") from exc
        return Anchor(seq, head_hash, key, response.get("VersionId") or "", now)

    def list(self, organization_id: int | None) -> list[Anchor]:
        """Every anchor of one chain, every version, oldest position first."""
        try:
            return sorted(self._iter(organization_id), key=lambda a: (a.seq, a.key))
        except Exception as exc:  # noqa: BLE001
            raise AnchorStoreError(f"could not list anchors: {exc}") from exc

    def _iter(self, organization_id: int | None) -> Iterator[Anchor]:
        prefix = self._chain_prefix(organization_id)
        paginator = self.client().get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                match = _KEY.fullmatch(version["Key"][len(prefix) :])
                if match is None:
                    continue  # not an anchor: ignored, never trusted
                yield Anchor(
                    int(match["seq"]),
                    match["hash"],
                    version["Key"],
                    version.get("VersionId") or "",
                    version.get("LastModified"),
                )
