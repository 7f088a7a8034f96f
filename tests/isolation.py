"""The reusable isolation suite (STYLE.md §6): every page and endpoint declares its route once,
and the suite checks anonymous access, other organizations, every role, and the audit trail.

A new view joins by adding one Route to ROUTES; a write route names the audit event it leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Route:
    name: str
    path: str  # formatted with the World's attributes: {org}, {team}, {member_pk}, ...
    action: str  # the role action it needs (accounts/roles.py)
    method: str = "get"
    api: bool = False
    data: Callable[[Any], dict] | None = None
    audit: str | None = None  # the one audit action a successful write or download leaves
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

# An AWS tag policy document (AWS's "Tag policy syntax" example), for the AWS tag policy routes.
AWS_TAG_POLICY = """{
    "tags": {
        "costcenter": {
            "tag_key": {"@@assign": "CostCenter"},
            "tag_value": {"@@assign": ["100", "200", "300*"]},
            "enforced_for": {"@@assign": ["secretsmanager:ALL_SUPPORTED"]}
        }
    }
}"""


def _evidence_request(world: Any) -> dict:
    """A package request for the world's framework over the last week."""
    today = datetime.now(UTC).date()
    return {
        "frameworks": [world.framework],
        "period_start": (today - timedelta(days=7)).isoformat(),
        "period_end": today.isoformat(),
    }


ROUTES: list[Route] = [
    # pages
    Route("dashboard", "/o/{org}/", "view"),
    Route("settings", "/o/{org}/settings/", "view"),
    Route("team-detail", "/o/{org}/teams/{team}/", "view"),
    Route("audit-log", "/o/{org}/audit/", "audit"),
    Route("audit-log-csv", "/o/{org}/audit/?format=csv", "audit", audit="export.download"),
    Route("audit-log-jsonl", "/o/{org}/audit/?format=jsonl", "audit", audit="export.download"),
    Route("inventory", "/o/{org}/inventory/", "view"),
    # evidence packages (a ready one in each organization)
    Route("evidence-list", "/o/{org}/evidence/", "audit"),
    Route(
        "evidence-request",
        "/o/{org}/evidence/",
        "audit",
        "post",
        data=_evidence_request,
        audit="evidence.export_request",
        ok_status=(302,),
    ),
    Route("evidence-detail", "/o/{org}/evidence/{export_uuid}/", "audit"),
    Route(
        "evidence-download",
        "/o/{org}/evidence/{export_uuid}/download",
        "audit",
        audit="evidence.export_download",
    ),
    Route("inventory-csv", "/o/{org}/inventory/?format=csv", "view", audit="export.download"),
    Route("policies", "/o/{org}/policies/", "view"),
    Route("findings", "/o/{org}/findings/", "view"),
    Route("evidence-keys", "/o/{org}/evidence/keys/", "audit"),
    Route("evidence-key-pem", "/o/{org}/evidence/keys/{key_token}.pem", "view"),
    Route("evidence-current-key-pem", "/o/{org}/evidence/key.pem", "view"),
    Route(
        "evidence-key-rotate",
        "/o/{org}/evidence/keys/rotate/",
        "manage",
        "post",
        audit="evidence.key_rotate",
        ok_status=(302,),
    ),
    Route("assistant", "/o/{org}/assistant/", "view"),
    Route("assistant-settings", "/o/{org}/assistant/settings/", "manage"),
    Route("assistant-usage", "/o/{org}/assistant/usage/", "audit"),
    Route(
        "assistant-ask",
        "/o/{org}/assistant/ask/",
        "view",
        "post",
        data=lambda w: {"question": "Which resources are untagged?", "mode": "chat"},
        audit="assistant.prompt",
    ),
    Route(
        "assistant-settings-save",
        "/o/{org}/assistant/settings/",
        "manage",
        "post",
        data=lambda w: {
            "action": "settings",
            "temperature": "0.3",
            "max_tokens": "800",
            "monthly_token_budget": "100000",
        },
        audit="assistant.settings_update",
        ok_status=(302,),
    ),  # fmt: skip
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
    # single sign-on (accounts/sso/)
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
    Route(
        "account-role-template",
        "/o/{org}/inventory/accounts/role-template.yaml",
        "manage",
        audit="export.download",
    ),
    Route("resource-detail", "/o/{org}/inventory/resources/{resource_pk}/", "view"),
    Route("resource-findings", "/o/{org}/findings/resource/{resource_pk}/", "view"),
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
    Route("rule-export", "/o/{org}/policies/export.yaml", "view", audit="export.download"),
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
    # frameworks and scores
    Route("framework-list", "/o/{org}/policies/frameworks/", "view"),
    Route("framework-detail", "/o/{org}/policies/frameworks/{framework}/", "view"),
    Route(
        "framework-enable",
        "/o/{org}/policies/frameworks/enable/",
        "manage",
        "post",
        data=lambda w: {"framework": "soc2"},
        audit="policy.framework_enable",
        ok_status=(302,),
    ),
    Route(
        "framework-create",
        "/o/{org}/policies/frameworks/new/",
        "manage",
        "post",
        data=lambda w: {"name": "Internal", "controls": "IN-1 | Owners | " + w.rule_id},
        audit="policy.framework_create",
        ok_status=(302,),
    ),
    Route(
        "control-rules",
        "/o/{org}/policies/frameworks/{framework}/controls/{control_pk}/rules/",
        "manage",
        "post",
        data=lambda w: {"rules": w.rule_id},
        audit="policy.framework_update",
        ok_status=(302,),
    ),
    Route(
        "framework-delete",
        "/o/{org}/policies/frameworks/{framework}/delete/",
        "manage",
        "post",
        audit="policy.framework_delete",
        ok_status=(302,),
    ),
    Route("findings-csv", "/o/{org}/findings/?format=csv", "view", audit="export.download"),
    Route("aws-policy-list", "/o/{org}/policies/aws/", "view"),
    Route(
        "aws-policy-export",
        "/o/{org}/policies/aws/export.json",
        "view",
        audit="export.download",
    ),
    Route("aws-policy-detail", "/o/{org}/policies/aws/{aws_policy_pk}/", "view"),
    Route("aws-effective", "/o/{org}/policies/aws/effective/", "view"),
    Route("aws-effective-account", "/o/{org}/policies/aws/effective/777777777777/", "view"),
    Route(
        "aws-policy-import",
        "/o/{org}/policies/aws/",
        "manage",
        "post",
        data=lambda w: {
            "name": "imported",
            "document": AWS_TAG_POLICY,
            "target_type": "account",
            "target": "555555555556",
        },
        audit="policy.aws_tag_policy_import",
        ok_status=(302,),
    ),
    Route(
        "aws-policy-update",
        "/o/{org}/policies/aws/{aws_policy_pk}/",
        "manage",
        "post",
        data=lambda w: {
            "name": "renamed",
            "document": AWS_TAG_POLICY,
            "target_type": "account",
            "target": "555555555555",
        },
        audit="policy.aws_tag_policy_update",
        ok_status=(302,),
    ),
    Route(
        "aws-policy-delete",
        "/o/{org}/policies/aws/{aws_policy_pk}/delete/",
        "manage",
        "post",
        audit="policy.aws_tag_policy_delete",
        ok_status=(302,),
    ),
    Route(
        "policy-evaluate",
        "/o/{org}/policies/evaluate/",
        "manage",
        "post",
        audit="policy.evaluate",
        ok_status=(302,),
    ),
    Route("exemption-list", "/o/{org}/findings/exemptions/", "view"),
    Route(
        "exemption-request",
        "/o/{org}/findings/exemptions/",
        "change",
        "post",
        data=lambda w: {
            "finding": [w.finding_pk],
            "justification": "x",
            "expires_at": "2099-01-01",
        },
        audit="policy.exemption_request",
        ok_status=(302,),
    ),
    Route(
        "exemption-approve",
        "/o/{org}/findings/exemptions/{exemption_pk}/approve/",
        "manage",
        "post",
        audit="policy.exemption_approve",
        ok_status=(302,),
    ),
    Route(
        "exemption-reject",
        "/o/{org}/findings/exemptions/{exemption_pk}/reject/",
        "manage",
        "post",
        audit="policy.exemption_reject",
        ok_status=(302,),
    ),
    # GET on the pages that take a POST: back to their page, or nothing to see
    Route("rule-import-get", "/o/{org}/policies/import/", "view", ok_status=(302,)),
    Route("policy-evaluate-get", "/o/{org}/policies/evaluate/", "view", ok_status=(302,)),
    Route("rule-preview-get", "/o/{org}/policies/preview/", "view", ok_status=(404,)),
    Route("framework-enable-get", "/o/{org}/policies/frameworks/enable/", "view", ok_status=(405,)),
    Route("framework-create-get", "/o/{org}/policies/frameworks/new/", "view", ok_status=(302,)),
    Route("framework-delete-get", "/o/{org}/policies/frameworks/{framework}/delete/", "view"),
    Route(
        "control-rules-get",
        "/o/{org}/policies/frameworks/{framework}/controls/{control_pk}/rules/",
        "view",
        ok_status=(302,),
    ),
    Route("rule-delete-get", "/o/{org}/policies/rules/{rule_id}/delete/", "view", ok_status=(405,)),
    Route(
        "aws-policy-delete-get",
        "/o/{org}/policies/aws/{aws_policy_pk}/delete/",
        "view",
        ok_status=(405,),
    ),
    Route(
        "exemption-approve-get",
        "/o/{org}/findings/exemptions/{exemption_pk}/approve/",
        "view",
        ok_status=(405,),
    ),
    Route(
        "exemption-reject-get",
        "/o/{org}/findings/exemptions/{exemption_pk}/reject/",
        "view",
        ok_status=(405,),
    ),
    Route("assistant-ask-get", "/o/{org}/assistant/ask/", "view", ok_status=(302,)),
    Route(
        "assistant-stop-get", "/o/{org}/assistant/stop/{my_answer_pk}/", "view", ok_status=(405,)
    ),
    # the assistant's answer, streamed and stopped (the caller's own pending answer)
    Route("assistant-stream", "/o/{org}/assistant/stream/{my_answer_pk}/", "view"),
    Route(
        "assistant-stop",
        "/o/{org}/assistant/stop/{my_answer_pk}/",
        "view",
        "post",
        audit="assistant.stop",
        ok_status=(204,),
    ),
    # AWS Organizations discovery from a management account (moto: not in an organization)
    Route(
        "account-discover", "/o/{org}/inventory/accounts/{account_pk}/discover/", "manage", "post"
    ),
    # API
    Route("api-org", "/api/v1/o/{org}/", "view", api=True),
    Route("api-members", "/api/v1/o/{org}/members/", "view", api=True),
    Route("api-teams", "/api/v1/o/{org}/teams/", "view", api=True),
    Route("api-audit", "/api/v1/o/{org}/audit-events/", "audit", api=True),
    Route("api-token-list", "/api/v1/o/{org}/tokens/", "view", api=True),
    Route("api-evidence-exports", "/api/v1/o/{org}/evidence/exports/", "audit", api=True),
    Route(
        "api-evidence-request",
        "/api/v1/o/{org}/evidence/exports/",
        "audit",
        "post",
        api=True,
        data=_evidence_request,
        audit="evidence.export_request",
        ok_status=(202,),
    ),
    Route(
        "api-evidence-export", "/api/v1/o/{org}/evidence/exports/{export_uuid}/", "audit", api=True
    ),
    Route(
        "api-evidence-download",
        "/api/v1/o/{org}/evidence/exports/{export_uuid}/download",
        "audit",
        api=True,
        audit="evidence.export_download",
    ),
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
    Route(
        "api-neighbours",
        "/api/v1/o/{org}/inventory/resources/{resource_pk}/neighbours/",
        "view",
        api=True,
    ),
    Route(
        "api-graph-path",
        "/api/v1/o/{org}/inventory/resources/{resource_pk}/path/?to={resource_pk}",
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
    Route(
        "api-rule-export",
        "/api/v1/o/{org}/policies/export/",
        "view",
        api=True,
        audit="export.download",
    ),
    Route("api-findings", "/api/v1/o/{org}/policies/findings/", "view", api=True),
    Route("api-finding-counts", "/api/v1/o/{org}/policies/findings/counts/", "view", api=True),
    Route("api-exemptions", "/api/v1/o/{org}/policies/exemptions/", "view", api=True),
    Route(
        "api-exemption-request",
        "/api/v1/o/{org}/policies/exemptions/",
        "change",
        "post",
        api=True,
        data=lambda w: {
            "findings": [w.finding_pk],
            "justification": "x",
            "expires_at": "2099-01-01T00:00:00Z",
        },
        audit="policy.exemption_request",
        ok_status=(201,),
    ),
    Route(
        "api-exemption-approve",
        "/api/v1/o/{org}/policies/exemptions/{exemption_pk}/approve/",
        "manage",
        "post",
        api=True,
        audit="policy.exemption_approve",
    ),
    Route(
        "api-exemption-reject",
        "/api/v1/o/{org}/policies/exemptions/{exemption_pk}/reject/",
        "manage",
        "post",
        api=True,
        audit="policy.exemption_reject",
    ),
    Route(
        "api-ci-check",
        "/api/v1/o/{org}/policies/ci-check/?source=terraform",
        "view",
        "post",
        api=True,
        data=lambda w: {"format_version": "1.2", "resource_changes": []},
    ),
    Route(
        "api-policy-evaluate",
        "/api/v1/o/{org}/policies/evaluate/",
        "manage",
        "post",
        api=True,
        audit="policy.evaluate",
    ),
    Route("api-aws-policies", "/api/v1/o/{org}/policies/aws-tag-policies/", "view", api=True),
    Route(
        "api-aws-policy-import",
        "/api/v1/o/{org}/policies/aws-tag-policies/",
        "manage",
        "post",
        api=True,
        data=lambda w: {
            "name": "imported",
            "document": AWS_TAG_POLICY,
            "target_type": "account",
            "target": "555555555556",
        },
        audit="policy.aws_tag_policy_import",
        ok_status=(201,),
    ),
    Route(
        "api-aws-policy",
        "/api/v1/o/{org}/policies/aws-tag-policies/{aws_policy_pk}/",
        "view",
        api=True,
    ),
    Route(
        "api-aws-policy-update",
        "/api/v1/o/{org}/policies/aws-tag-policies/{aws_policy_pk}/",
        "manage",
        "put",
        api=True,
        data=lambda w: {"position": 3},
        audit="policy.aws_tag_policy_update",
    ),
    Route(
        "api-aws-policy-delete",
        "/api/v1/o/{org}/policies/aws-tag-policies/{aws_policy_pk}/",
        "manage",
        "delete",
        api=True,
        audit="policy.aws_tag_policy_delete",
        ok_status=(204,),
    ),
    Route(
        "api-aws-policy-export",
        "/api/v1/o/{org}/policies/aws-tag-policies/export/",
        "view",
        api=True,
        audit="export.download",
    ),
    Route(
        "api-aws-effective",
        "/api/v1/o/{org}/policies/aws-tag-policies/effective/",
        "view",
        api=True,
    ),
    Route(
        "api-aws-effective-account",
        "/api/v1/o/{org}/policies/aws-tag-policies/effective/777777777777/",
        "view",
        api=True,
    ),
    Route("api-frameworks", "/api/v1/o/{org}/policies/frameworks/", "view", api=True),
    Route(
        "api-builtin-frameworks", "/api/v1/o/{org}/policies/frameworks/builtin/", "view", api=True
    ),
    Route("api-framework", "/api/v1/o/{org}/policies/frameworks/{framework}/", "view", api=True),
    Route(
        "api-control",
        "/api/v1/o/{org}/policies/frameworks/{framework}/controls/{control_pk}/",
        "view",
        api=True,
    ),
    Route("api-scores", "/api/v1/o/{org}/policies/scores/", "view", api=True),
    Route("api-scores-by-team", "/api/v1/o/{org}/policies/scores/?by=team", "view", api=True),
    Route(
        "api-trends",
        "/api/v1/o/{org}/policies/trends/?kind=framework&key={framework}&days=90",
        "view",
        api=True,
    ),
    Route(
        "api-framework-enable",
        "/api/v1/o/{org}/policies/frameworks/enable/",
        "manage",
        "post",
        api=True,
        data=lambda w: {"framework": "hipaa"},
        audit="policy.framework_enable",
    ),
    Route(
        "api-framework-create",
        "/api/v1/o/{org}/policies/frameworks/",
        "manage",
        "post",
        api=True,
        data=lambda w: {"name": "Internal", "controls": [{"id": "IN-1", "title": "Owners"}]},
        audit="policy.framework_create",
        ok_status=(201,),
    ),
    Route(
        "api-control-rules",
        "/api/v1/o/{org}/policies/frameworks/{framework}/controls/{control_pk}/",
        "manage",
        "put",
        api=True,
        data=lambda w: {"rules": [w.rule_id]},
        audit="policy.framework_update",
    ),
    Route(
        "api-framework-delete",
        "/api/v1/o/{org}/policies/frameworks/{framework}/",
        "manage",
        "delete",
        api=True,
        audit="policy.framework_delete",
        ok_status=(204,),
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

# Every route of the URL resolver that is not in ROUTES, with the reason it is not tenant-scoped
# (tests/test_isolation_covers_every_route.py fails on any other route ROUTES misses). Keyed by
# the route's pattern as the resolver spells it; an organization-scoped pattern (one naming the
# organization's slug) can only be listed by its exact pattern, every method at once.
NOT_TENANT_SCOPED: dict[str, str] = {
    "": "home: to the caller's last organization, or the list of the caller's own",
    "organizations/new/": "creates an organization; the caller becomes its owner",
    "invitations/<int:pk>/<str:answer>/": "the caller's own invitations (404 for anyone else's)",
    "healthz": "liveness probe, no data",
    "readyz": "readiness probe, no data",
    "favicon.ico": "a static file",
    "accounts/sso/": "the login page's SSO form: from a slug to that organization's IdP",
    "accounts/oidc/<str:provider_id>/login/callback/": "the OpenID Connect sign-in callback",
    "api/v1/organizations/": "the caller's own organizations (a token: its own one)",
    "api/schema/": "the OpenAPI document, no data",
    "api/docs/": "the API's documentation page, no data",
    # Single sign-on answers before anyone is signed in: the IdP (or the browser it sends) calls
    # these with the organization's slug, and the SAML messages are signed for that organization.
    "accounts/saml/<slug:organization_slug>/acs/finish/": "SAML sign-in, before a session",
    "accounts/saml/<slug:organization_slug>/sls/": "SAML single logout sent by the IdP",
    "accounts/saml/<slug:organization_slug>/metadata/": "public SP metadata given to the IdP",
    "accounts/saml/(?P<organization_slug>[^/]+)/acs/": "SAML sign-in (allauth), before a session",
    "accounts/saml/(?P<organization_slug>[^/]+)/acs/finish/": "shadowed by ours above",
    "accounts/saml/(?P<organization_slug>[^/]+)/sls/": "shadowed by ours above",
    "accounts/saml/(?P<organization_slug>[^/]+)/metadata/": "shadowed by ours above",
    "accounts/saml/(?P<organization_slug>[^/]+)/login/": "starts a SAML sign-in at the IdP",
}
# Whole URL configurations of other packages, by prefix (for patterns that name no organization).
NOT_TENANT_SCOPED_PREFIXES: dict[str, str] = {
    "admin/": "the Django admin: superusers, every tenant (all_tenants)",
    "accounts/": "allauth: the caller's own identity (sign-in, e-mail, password, MFA)",
}
