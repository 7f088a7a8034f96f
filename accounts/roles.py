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
