"""Discovery from AWS Organizations: from a management account, list member accounts with their
OU path; propose them, or register the new ones. Callers are in the tenant scope and manage."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

import audit

from . import audit_events, aws, signals
from .models import AwsAccount

DEFAULT_ROLE_NAME = "TagSenseReadOnly"


@dataclass(frozen=True)
class Discovered:
    account_id: str
    name: str
    email: str
    status: str  # ACTIVE, SUSPENDED...
    ou_path: str
    registered: bool


def _ou_paths(client) -> dict[str, str]:
    """Account id -> "Root/Production/Web", walking the OU tree breadth-first."""
    roots = client.list_roots()["Roots"]
    paths: dict[str, str] = {}
    queue = [(root["Id"], root.get("Name", "Root")) for root in roots]
    while queue:
        parent, path = queue.pop(0)
        for page in client.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
            for account in page["Accounts"]:
                paths[account["Id"]] = path
        for page in client.get_paginator("list_organizational_units_for_parent").paginate(
            ParentId=parent
        ):
            queue.extend((ou["Id"], f"{path}/{ou['Name']}") for ou in page["OrganizationalUnits"])
    return paths


def discover(management: AwsAccount) -> list[Discovered]:
    """The organization's accounts as AWS Organizations lists them (calls AWS)."""
    session = aws.session_for(
        aws.AccountCredentials(management.role_arn, management.external_id), aws.HOME_REGION
    )
    client = session.client("organizations", config=aws.CLIENT_CONFIG)
    paths = _ou_paths(client)
    known = set(
        AwsAccount.objects.for_org(management.organization).values_list("account_id", flat=True)
    )
    found = []
    for page in client.get_paginator("list_accounts").paginate():
        for account in page["Accounts"]:
            found.append(
                Discovered(
                    account_id=account["Id"],
                    name=account.get("Name", ""),
                    email=account.get("Email", ""),
                    status=account.get("Status", ""),
                    ou_path=paths.get(account["Id"], ""),
                    registered=account["Id"] in known,
                )
            )
    return sorted(found, key=lambda d: (d.ou_path, d.name))


@transaction.atomic
def register_discovered(
    management: AwsAccount, found: list[Discovered], *, role_name: str = DEFAULT_ROLE_NAME
) -> list[AwsAccount]:
    """Register the new ACTIVE accounts (role `role_name` in each, the management account's
    regions) and refresh the OU path of the known ones."""
    organization = management.organization
    created = []
    moved = []
    for item in found:
        if item.status not in ("", "ACTIVE"):
            continue
        if item.registered:
            changed = (
                AwsAccount.objects.for_org(organization)
                .filter(account_id=item.account_id)
                .exclude(ou_path=item.ou_path)
                .update(ou_path=item.ou_path)
            )
            if changed:
                moved.append(item.account_id)
            continue
        created.append(
            AwsAccount.objects.create(
                organization=organization,
                account_id=item.account_id,
                name=item.name,
                role_arn=f"arn:aws:iam::{item.account_id}:role/{role_name}",
                regions=list(management.regions),
                ou_path=item.ou_path,
                discovered_from=management,
            )
        )
    audit.record(
        audit_events.ACCOUNT_DISCOVER,
        target=management,
        data={
            "found": len(found),
            "registered": [a.account_id for a in created],
            "role_name": role_name,
            "moved": moved,
        },
    )
    if created or moved:
        signals.announce_accounts_changed(organization, [a.account_id for a in created] + moved)
    return created
