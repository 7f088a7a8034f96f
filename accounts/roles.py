"""Organization roles and what each may do. The one table the rest of the code asks."""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    AUDITOR = "auditor", "Auditor"
    VIEWER = "viewer", "Viewer"


# action -> roles that may perform it
ACTIONS: dict[str, frozenset[str]] = {
    # read the organization's data
    "view": frozenset(Role.values),
    # change governed data: policies, exemptions requests, scans
    "change": frozenset({Role.OWNER, Role.ADMIN, Role.EDITOR}),
    # organization settings, members, teams, AWS accounts
    "manage": frozenset({Role.OWNER, Role.ADMIN}),
    # the audit log and evidence exports
    "audit": frozenset({Role.OWNER, Role.ADMIN, Role.AUDITOR}),
    # transfer ownership, delete the organization, grant the owner role
    "own": frozenset({Role.OWNER}),
}


def role_allows(role: str, action: str) -> bool:
    try:
        return role in ACTIONS[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}") from None


# Roles that see every AWS account of the organization (and so every resource, scan and
# finding). The other roles see only the accounts granted to one of their teams.
ALL_ACCOUNTS_ROLES: frozenset[str] = frozenset({Role.OWNER, Role.ADMIN, Role.AUDITOR})


def sees_all_accounts(role: str) -> bool:
    return role in ALL_ACCOUNTS_ROLES


# One line per action, for docs/permissions.md (accounts/permissions.py renders the matrix).
ACTION_HELP: dict[str, str] = {
    "view": "Read the organization's data: dashboard, inventory, scans, teams, members.",
    "change": "Change governed data: start scans, request exemptions of findings.",
    "manage": (
        "Organization settings, members, teams, AWS accounts and which teams hold them; "
        "tag rules (create, edit, import, delete), evaluation, approving exemptions."
    ),
    "audit": "The audit log and evidence exports.",
    "own": "Transfer ownership, delete the organization, grant the owner role.",
}
