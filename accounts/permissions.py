"""docs/permissions.md, rendered from accounts/roles.py so the page cannot drift from the code
(`manage.py permissions_doc` writes it; a test renders it again and compares)."""

from __future__ import annotations

from .roles import ACTION_HELP, ACTIONS, ALL_ACCOUNTS_ROLES, Role


def render_permissions_markdown() -> str:
    roles = list(Role)
    lines = [
        "# Roles and permissions",
        "",
        "<!-- Generated from accounts/roles.py by `python manage.py permissions_doc`;"
        " do not edit by hand. -->",
        "",
        "Every member of an organization has one role. Code asks `role_allows(role, action)`;",
        "a page or endpoint names the action it needs (`tests/isolation.py` lists every route",
        "with its action, and the isolation suite checks each role against each route).",
        "",
        "## Role × action",
        "",
        "| Action | " + " | ".join(r.label for r in roles) + " | What it covers |",
        "| --- | " + " | ".join(":---:" for _ in roles) + " | --- |",
    ]
    for action, allowed in ACTIONS.items():
        cells = ["yes" if r.value in allowed else "—" for r in roles]
        lines.append(f"| `{action}` | " + " | ".join(cells) + f" | {ACTION_HELP[action]} |")
    lines += [
        "",
        "## Which AWS accounts a member sees",
        "",
        "| | " + " | ".join(r.label for r in roles) + " |",
        "| --- | " + " | ".join(":---:" for _ in roles) + " |",
        "| AWS accounts seen | "
        + " | ".join("all" if r.value in ALL_ACCOUNTS_ROLES else "their teams'" for r in roles)
        + " |",
        "",
        "An AWS account is granted to teams (*Inventory → AWS accounts → the account → Teams*,",
        "owners and admins; audited as `aws_account.team_grant` and `aws_account.team_revoke`).",
        "Roles marked *their teams'* see only the accounts held by a team they belong to, and",
        "only the resources, tag history, scans, scan units, schedules, graph neighbours and",
        "dashboard figures under those accounts; with no team they see no account, and the pages",
        "say so. Another account's page, resource or scan is a 404, exactly like another",
        "organization's. Roles marked *all* see every account; their lists and dashboard default",
        "to their teams' accounts when they are in a team, with a *My teams / All accounts*",
        "switch. The API lists everything the caller may see.",
        "",
        "A service account (docs/api.md) is in no team: it sees every account of its",
        "organization, and its role bounds what it may do.",
        "",
        "A team holds an account through a django-guardian group object permission",
        "(`inventory.hold_awsaccount`, on the team's Django group `tagsense-team-<id>`), stored in",
        "`inventory.AccountTeamGrant`, a tenant table under row-level security. The check is one",
        "SQL subquery (`inventory.access.visible_accounts`).",
        "",
    ]
    return "\n".join(lines)
