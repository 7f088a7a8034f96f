"""The reusable isolation suite (STYLE.md §6): every page and endpoint declares its route once,
and the suite checks anonymous access, other organizations, every role, and the audit trail.

A new view joins by adding one Route to ROUTES; a write route names the audit event it leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Route:
    name: str
    path: str  # formatted with the World's attributes: {org}, {team}, {member_pk}, ...
    action: str  # the role action it needs (accounts/roles.py)
    method: str = "get"
    api: bool = False
    data: Callable[[Any], dict] | None = None
    audit: str | None = None  # the one audit action a successful write leaves
    ok_status: tuple[int, ...] = field(default=(200,))

    def url(self, world: Any, org_slug: str | None = None) -> str:
        values = dict(vars(world))
        if org_slug:
            values["org"] = org_slug
        return self.path.format(**values)


# A rule file of one rule, for the policies routes.
RULE_FILE = """version: 1
rules:
  - id: {id}
    title: Resources carry a CostCenter
    check: required_key
    key: CostCenter
    severity: high
"""

ROUTES: list[Route] = [
    # pages
    Route("dashboard", "/o/{org}/", "view"),
    Route("settings", "/o/{org}/settings/", "view"),
    Route("team-detail", "/o/{org}/teams/{team}/", "view"),
    Route("audit-log", "/o/{org}/audit/", "audit"),
    Route("inventory", "/o/{org}/inventory/", "view"),
    Route("policies", "/o/{org}/policies/", "view"),
    Route("findings", "/o/{org}/findings/", "view"),
    Route("assistant", "/o/{org}/assistant/", "view"),
    # page actions
    Route(
        "org-update",
        "/o/{org}/settings/organization/",
        "manage",
        "post",
        data=lambda w: {"name": "Acme Renamed"},
        audit="org.update",
        ok_status=(302,),
    ),
    Route(
        "org-security",
        "/o/{org}/settings/security/",
        "manage",
        "post",
        data=lambda w: {"require_mfa": "on"},
        audit="org.update",
        ok_status=(302,),
    ),
    Route(
        "member-add",
        "/o/{org}/settings/members/add/",
        "manage",
        "post",
        data=lambda w: {"email": w.stranger_email, "role": "viewer"},
        audit="org.member_add",
        ok_status=(302,),
    ),
    Route(
        "member-role",
        "/o/{org}/settings/members/{member_pk}/role/",
        "manage",
        "post",
        data=lambda w: {"role": "editor"},
        audit="org.member_role_change",
        ok_status=(302,),
    ),
    Route(
        "member-remove",
        "/o/{org}/settings/members/{member_pk}/remove/",
        "manage",
        "post",
        audit="org.member_remove",
        ok_status=(302,),
    ),
    Route(
        "team-add",
        "/o/{org}/settings/teams/add/",
        "manage",
        "post",
        data=lambda w: {"name": "Data Platform", "description": ""},
        audit="team.create",
        ok_status=(302,),
    ),
    Route(
        "team-edit",
        "/o/{org}/teams/{team}/edit/",
        "manage",
        "post",
        data=lambda w: {"name": "Platform Eng", "description": "x"},
        audit="team.update",
        ok_status=(302,),
    ),
    Route(
        "team-delete",
        "/o/{org}/teams/{team}/delete/",
        "manage",
        "post",
        audit="team.delete",
        ok_status=(302,),
    ),
    Route(
        "team-member-add",
        "/o/{org}/teams/{team}/members/add/",
        "manage",
        "post",
        data=lambda w: {"user": w.member_user_pk},
        audit="team.member_add",
        ok_status=(302,),
    ),
    Route(
        "team-member-remove",
        "/o/{org}/teams/{team}/members/{team_member_pk}/remove/",
        "manage",
        "post",
        audit="team.member_remove",
        ok_status=(302,),
    ),
    # API tokens: a member's own (any role), service accounts (owners and admins)
    Route("api-tokens", "/o/{org}/settings/tokens/", "view"),
    Route(
        "api-token-add",
        "/o/{org}/settings/tokens/",
        "view",
        "post",
        data=lambda w: {"name": "laptop", "scope": "read", "expires_in_days": "30"},
        audit="api_token.create",
    ),
    Route(
        "api-token-revoke",
        "/o/{org}/settings/tokens/{my_token_pk}/revoke/",
        "view",
        "post",
        audit="api_token.revoke",
        ok_status=(302,),
    ),
    Route("service-accounts", "/o/{org}/settings/service-accounts/", "manage"),
    Route(
        "service-account-add",
        "/o/{org}/settings/service-accounts/",
        "manage",
        "post",
        data=lambda w: {"name": "terraform-ci", "role": "viewer"},
        audit="service_account.create",
        ok_status=(302,),
    ),
    Route(
        "service-account-token-add",
        "/o/{org}/settings/service-accounts/{sa_pk}/tokens/",
        "manage",
        "post",
        data=lambda w: {"name": "pipeline", "scope": "ci", "expires_in_days": "0"},
        audit="api_token.create",
    ),
    Route(
        "service-account-token-revoke",
        "/o/{org}/settings/service-accounts/{sa_pk}/tokens/{sa_token_pk}/revoke/",
        "manage",
        "post",
        audit="api_token.revoke",
        ok_status=(302,),
    ),
    # single sign-on (accounts/sso.py)
    Route("sso-settings", "/o/{org}/settings/sso/", "manage"),
    Route(
        "sso-configure",
        "/o/{org}/settings/sso/idp/",
        "manage",
        "post",
        data=lambda w: {
            "entity_id": "https://idp.example.net/other",
            "sso_url": "https://idp.example.net/sso",
            "certificate": w.idp_certificate,
        },
        audit="sso.configure",
        ok_status=(302,),
    ),
    Route(
        "sso-oidc-configure",
        "/o/{org}/settings/sso/oidc/",
        "manage",
        "post",
        data=lambda w: {
            "issuer": w.oidc_issuer,
            "client_id": "tagsense",
            "client_secret": "s3cret-value",
            "groups_claim": "groups",
        },
        audit="sso.oidc_configure",
        ok_status=(302,),
    ),
    Route(
        "sso-require",
        "/o/{org}/settings/sso/require/",
        "manage",
        "post",
        data=lambda w: {"sso_required": "on"},
        audit="sso.require",
        ok_status=(302,),
    ),
    Route(
        "sso-mapping-add",
        "/o/{org}/settings/sso/mappings/add/",
        "manage",
        "post",
        data=lambda w: {"group": "Admins", "role": "admin"},
        audit="sso.mapping_add",
        ok_status=(302,),
    ),
    Route(
        "sso-mapping-remove",
        "/o/{org}/settings/sso/mappings/{sso_mapping_pk}/remove/",
        "manage",
        "post",
        audit="sso.mapping_remove",
        ok_status=(302,),
    ),
    Route(
        "member-break-glass",
        "/o/{org}/settings/members/{owner_member_pk}/break-glass/",
        "own",
        "post",
        data=lambda w: {"break_glass": "on"},
        audit="org.member_break_glass",
        ok_status=(302,),
    ),
    # inventory pages
    Route("account-list", "/o/{org}/inventory/accounts/", "view"),
    Route("account-detail", "/o/{org}/inventory/accounts/{account_pk}/", "view"),
    Route(
        "account-add",
        "/o/{org}/inventory/accounts/",
        "manage",
        "post",
        data=lambda w: {
            "account_id": "210987654321",
            "name": "new",
            "regions": "eu-west-1",
            "enabled": "on",
        },
        audit="aws_account.create",
        ok_status=(302,),
    ),
    Route(
        "account-edit",
        "/o/{org}/inventory/accounts/{account_pk}/",
        "manage",
        "post",
        data=lambda w: {"name": "renamed", "regions": "eu-west-1", "enabled": "on"},
        audit="aws_account.update",
        ok_status=(302,),
    ),
    Route(
        "account-test",
        "/o/{org}/inventory/accounts/{account_pk}/test/",
        "manage",
        "post",
        audit="aws_account.test_connection",
    ),
    Route(
        "account-teams",
        "/o/{org}/inventory/accounts/{account_pk}/teams/",
        "manage",
        "post",
        # The account is held by {team} already: adding {data_team} is one grant.
        data=lambda w: {"teams": [w.team_pk, w.data_team_pk]},
        audit="aws_account.team_grant",
        ok_status=(302,),
    ),
    Route(
        "account-delete",
        "/o/{org}/inventory/accounts/{account_pk}/delete/",
        "manage",
        "post",
        audit="aws_account.delete",
        ok_status=(302,),
    ),
    Route("resource-detail", "/o/{org}/inventory/resources/{resource_pk}/", "view"),
    Route("resource-graph", "/o/{org}/inventory/resources/{resource_pk}/graph.json", "view"),
    Route("scan-list", "/o/{org}/inventory/scans/", "view"),
    Route("scan-detail", "/o/{org}/inventory/scans/{scan_pk}/", "view"),
    Route(
        "scan-start",
        "/o/{org}/inventory/scans/start/",
        "change",
        "post",
        data=lambda w: {"type": "ec2:vpc"},
        audit="scan.start",
        ok_status=(302,),
    ),
    Route("schedule-list", "/o/{org}/inventory/schedules/", "view"),
    Route(
        "schedule-add",
        "/o/{org}/inventory/schedules/",
        "manage",
        "post",
        data=lambda w: {
            "name": "Nightly",
            "kind": "cron",
            "cron": "0 3 * * *",
            "timezone": "UTC",
            "enabled": "on",
        },
        audit="scan_schedule.create",
        ok_status=(302,),
    ),
    # policies pages
    Route("rule-edit", "/o/{org}/policies/rules/{rule_id}/", "view"),
    Route("rule-new", "/o/{org}/policies/rules/new/", "manage"),
    Route("rule-export", "/o/{org}/policies/export.yaml", "view"),
    Route(
        "rule-create",
        "/o/{org}/policies/rules/new/",
        "manage",
        "post",
        data=lambda w: {"yaml": RULE_FILE.format(id="owner-required"), "active": "on"},
        audit="policy.rule_create",
        ok_status=(302,),
    ),
    Route(
        "rule-update",
        "/o/{org}/policies/rules/{rule_id}/",
        "manage",
        "post",
        data=lambda w: {"yaml": RULE_FILE.format(id=w.rule_id), "active": "on"},
        audit="policy.rule_update",
        ok_status=(302,),
    ),
    Route(
        "rule-delete",
        "/o/{org}/policies/rules/{rule_id}/delete/",
        "manage",
        "post",
        audit="policy.rule_delete",
        ok_status=(302,),
    ),
    Route(
        "rule-import",
        "/o/{org}/policies/import/",
        "manage",
        "post",
        data=lambda w: {"yaml": RULE_FILE.format(id="imported"), "mode": "merge"},
        audit="policy.rule_import",
        ok_status=(302,),
    ),
    Route(
        "rule-preview",
        "/o/{org}/policies/preview/",
        "manage",
        "post",
        data=lambda w: {"yaml": RULE_FILE.format(id="previewed")},
    ),
    Route("findings-csv", "/o/{org}/findings/?format=csv", "view"),
    Route(
        "policy-evaluate",
        "/o/{org}/policies/evaluate/",
        "manage",
        "post",
        audit="policy.evaluate",
        ok_status=(302,),
    ),
    # API
    Route("api-org", "/api/v1/o/{org}/", "view", api=True),
    Route("api-members", "/api/v1/o/{org}/members/", "view", api=True),
    Route("api-teams", "/api/v1/o/{org}/teams/", "view", api=True),
    Route("api-audit", "/api/v1/o/{org}/audit-events/", "audit", api=True),
    Route("api-token-list", "/api/v1/o/{org}/tokens/", "view", api=True),
    Route(
        "api-token-create",
        "/api/v1/o/{org}/tokens/",
        "view",
        "post",
        api=True,
        data=lambda w: {"name": "script", "scope": "write", "expires_in_days": 7},
        audit="api_token.create",
        ok_status=(201,),
    ),
    Route(
        "api-token-revoke-api",
        "/api/v1/o/{org}/tokens/{my_token_pk}/revoke/",
        "view",
        "post",
        api=True,
        audit="api_token.revoke",
    ),
    Route("api-service-accounts", "/api/v1/o/{org}/service-accounts/", "manage", api=True),
    Route(
        "api-service-account-add",
        "/api/v1/o/{org}/service-accounts/",
        "manage",
        "post",
        api=True,
        data=lambda w: {"name": "deployer", "role": "editor"},
        audit="service_account.create",
        ok_status=(201,),
    ),
    Route(
        "api-service-account-tokens",
        "/api/v1/o/{org}/service-accounts/{sa_pk}/tokens/",
        "manage",
        api=True,
    ),
    Route(
        "api-service-account-token-add",
        "/api/v1/o/{org}/service-accounts/{sa_pk}/tokens/",
        "manage",
        "post",
        api=True,
        data=lambda w: {"name": "pipeline", "scope": "read", "expires_in_days": 90},
        audit="api_token.create",
        ok_status=(201,),
    ),
    Route(
        "api-service-account-token-revoke",
        "/api/v1/o/{org}/service-accounts/{sa_pk}/tokens/{sa_token_pk}/revoke/",
        "manage",
        "post",
        api=True,
        audit="api_token.revoke",
    ),
    Route("api-accounts", "/api/v1/o/{org}/inventory/accounts/", "view", api=True),
    Route(
        "api-account-add",
        "/api/v1/o/{org}/inventory/accounts/",
        "manage",
        "post",
        api=True,
        data=lambda w: {"account_id": "210987654321", "regions": ["eu-west-1"]},
        audit="aws_account.create",
        ok_status=(201,),
    ),
    Route("api-account", "/api/v1/o/{org}/inventory/accounts/{account_pk}/", "view", api=True),
    Route("api-scans", "/api/v1/o/{org}/inventory/scans/", "view", api=True),
    Route(
        "api-scan-start",
        "/api/v1/o/{org}/inventory/scans/",
        "change",
        "post",
        api=True,
        data=lambda w: {"types": ["ec2:vpc"]},
        audit="scan.start",
        ok_status=(202,),
    ),
    Route("api-scan", "/api/v1/o/{org}/inventory/scans/{scan_pk}/", "view", api=True),
    Route("api-resources", "/api/v1/o/{org}/inventory/resources/", "view", api=True),
    Route("api-resource", "/api/v1/o/{org}/inventory/resources/{resource_pk}/", "view", api=True),
    Route(
        "api-blast-radius",
        "/api/v1/o/{org}/inventory/resources/{resource_pk}/blast-radius/",
        "view",
        api=True,
    ),
    Route("api-rules", "/api/v1/o/{org}/policies/rules/", "view", api=True),
    Route(
        "api-rule-create",
        "/api/v1/o/{org}/policies/rules/",
        "manage",
        "post",
        api=True,
        data=lambda w: {
            "spec": {
                "id": "env-required",
                "title": "E",
                "check": "required_key",
                "key": "Environment",
            }
        },  # fmt: skip
        audit="policy.rule_create",
        ok_status=(201,),
    ),
    Route("api-rule", "/api/v1/o/{org}/policies/rules/{rule_id}/", "view", api=True),
    Route(
        "api-rule-update",
        "/api/v1/o/{org}/policies/rules/{rule_id}/",
        "manage",
        "put",
        api=True,
        data=lambda w: {"active": False},
        audit="policy.rule_update",
    ),
    Route(
        "api-rule-delete",
        "/api/v1/o/{org}/policies/rules/{rule_id}/",
        "manage",
        "delete",
        api=True,
        audit="policy.rule_delete",
        ok_status=(204,),
    ),
    Route(
        "api-rule-versions", "/api/v1/o/{org}/policies/rules/{rule_id}/versions/", "view", api=True
    ),  # fmt: skip
    Route(
        "api-rule-import",
        "/api/v1/o/{org}/policies/import/",
        "manage",
        "post",
        api=True,
        data=lambda w: {"yaml": RULE_FILE.format(id="imported"), "mode": "replace"},
        audit="policy.rule_import",
    ),
    Route("api-rule-export", "/api/v1/o/{org}/policies/export/", "view", api=True),
    Route("api-findings", "/api/v1/o/{org}/policies/findings/", "view", api=True),
    Route(
        "api-policy-evaluate",
        "/api/v1/o/{org}/policies/evaluate/",
        "manage",
        "post",
        api=True,
        audit="policy.evaluate",
    ),
    Route(
        "api-rule-preview",
        "/api/v1/o/{org}/policies/preview/",
        "manage",
        "post",
        api=True,
        data=lambda w: {"yaml": RULE_FILE.format(id="previewed")},
    ),
]

ROUTE_IDS = [r.name for r in ROUTES]
