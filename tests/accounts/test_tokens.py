"""API tokens as their users meet them: scopes, expiry, revocation, organizations, audit."""

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from accounts import services, tokens
from accounts.models import ApiToken, Membership
from accounts.tokens import UNKNOWN_REJECTIONS_PER_INTERVAL
from audit.models import AuditEvent
from inventory.models import AwsAccount
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for
from tests.factories import MembershipFactory
from tests.inventory.conftest import make_account

pytestmark = pytest.mark.django_db

ACCOUNT = {"account_id": "210987654321", "regions": ["eu-west-1"]}


def personal(user, org, scope="read", days=tokens.DEFAULT_EXPIRY_DAYS):
    with tenant_scope(org):
        membership = Membership.objects.get(user=user)
        return tokens.create_personal_token(
            membership, name="test", scope=scope, expires_in_days=days
        )


def bearer(secret):
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def events(org, action=None):
    with tenant_scope(org):
        rows = AuditEvent.objects.order_by("seq")
        return list(rows.filter(action=action) if action else rows)


def accounts_url(org):
    return f"/api/v1/o/{org.slug}/inventory/accounts/"


def test_a_read_token_can_get_but_not_post(org, admin, aws_env):
    _, secret = personal(admin, org, "read")
    client = bearer(secret)
    assert client.get(accounts_url(org)).status_code == 200
    refused = client.post(accounts_url(org), ACCOUNT, content_type="application/json")
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    assert "'write' scope" in refused.json()["detail"]
    with tenant_scope(org):
        assert not AwsAccount.objects.exists()


def test_a_ci_token_reads_and_cannot_write_while_no_ci_endpoint_exists(org, admin, aws_env):
    _, secret = personal(admin, org, "ci")
    client = bearer(secret)
    assert client.get(accounts_url(org)).status_code == 200
    refused = client.post(accounts_url(org), ACCOUNT, content_type="application/json")
    assert refused.status_code == 403
    assert "'ci' scope" in refused.json()["detail"]


def test_a_write_token_can_post_and_the_change_is_audited_as_the_token(org, admin, aws_env):
    token, secret = personal(admin, org, "write")
    response = bearer(secret).post(accounts_url(org), ACCOUNT, content_type="application/json")
    assert response.status_code == 201, response.content
    [created] = events(org, "aws_account.create")
    assert created.actor_kind == "token"
    assert created.actor_id == str(token.pk)
    assert created.actor_label == f"{admin.email} via token {token.prefix}"


def test_a_write_token_never_exceeds_its_members_role(org, admin, viewer, aws_env):
    _, viewer_secret = personal(viewer, org, "write")
    response = bearer(viewer_secret).post(
        accounts_url(org), ACCOUNT, content_type="application/json"
    )
    assert response.status_code == 403
    # The role is read at each request: an admin demoted to viewer loses the write at once.
    _, admin_secret = personal(admin, org, "write")
    with tenant_scope(org):
        owner = MembershipFactory(organization=org, role="owner")
        services.change_role(Membership.objects.get(user=admin), role="viewer", by=owner)
    demoted = bearer(admin_secret).post(accounts_url(org), ACCOUNT, content_type="application/json")
    assert demoted.status_code == 403
    assert bearer(admin_secret).get(accounts_url(org)).status_code == 200


@pytest.mark.parametrize("how", ["expired", "revoked", "unknown", "malformed"])
def test_a_bad_token_gets_401_with_a_bearer_challenge(org, viewer, how):
    token, secret = personal(viewer, org)
    if how == "expired":
        with tenant_scope(org):
            ApiToken.objects.filter(pk=token.pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
    elif how == "revoked":
        with tenant_scope(org):
            tokens.revoke_token(token, by=viewer)
    elif how == "unknown":
        secret = tokens.new_secret()
    else:
        secret = "not-a-token"
    response = bearer(secret).get(f"/api/v1/o/{org.slug}/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
    expected = {"expired": "expired", "revoked": "revoked"}.get(how, "Invalid token")
    assert expected in response.json()["detail"]


def test_the_same_token_works_until_it_expires(org, viewer):
    token, secret = personal(viewer, org, days=7)
    assert bearer(secret).get(f"/api/v1/o/{org.slug}/").status_code == 200
    assert token.expires_at - timezone.now() > timedelta(days=6, hours=23)


def test_an_anonymous_api_caller_is_challenged_for_a_bearer_token(org):
    response = Client().get(f"/api/v1/o/{org.slug}/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_token_of_one_organization_is_404_on_another(org, other_org, owner, outsider):
    _, secret = personal(owner, org, "write")  # owner of acme; globex exists, with objects
    with tenant_scope(other_org):
        their_account = AwsAccount.objects.create(
            organization=other_org, account_id="123456789012", regions=["eu-west-1"]
        )
    client = bearer(secret)
    theirs = client.get(f"/api/v1/o/{other_org.slug}/")
    missing = client.get("/api/v1/o/no-such-org/")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert client.get(f"{accounts_url(other_org)}{their_account.pk}/").status_code == 404
    # Their object's id under my own organization's URL is a 404 too.
    assert client.get(f"{accounts_url(org)}{their_account.pk}/").status_code == 404
    # Even if its owner belongs to both organizations, the token stays in its own.
    MembershipFactory(organization=other_org, user=owner, role="owner")
    assert client.get(f"/api/v1/o/{other_org.slug}/").status_code == 404
    listed = client.get("/api/v1/organizations/").json()
    assert [o["slug"] for o in listed] == [org.slug]


def test_a_removed_members_token_gets_401_even_after_they_rejoin(org, owner, viewer):
    _, secret = personal(viewer, org)
    with tenant_scope(org):
        by = Membership.objects.get(user=owner)
        services.remove_member(Membership.objects.get(user=viewer), by=by)
    gone = bearer(secret).get(f"/api/v1/o/{org.slug}/")
    assert gone.status_code == 401
    assert "revoked" in gone.json()["detail"]  # leaving revokes the member's tokens
    [revoked] = events(org, "api_token.revoke")
    assert revoked.data["reason"] == "the member left the organization"
    MembershipFactory(organization=org, user=viewer, role="viewer")  # invited back later
    assert bearer(secret).get(f"/api/v1/o/{org.slug}/").status_code == 401


def test_a_member_gone_without_removal_still_cannot_use_their_token(org, viewer):
    """Even when the membership row goes some other way (a cascade, the admin), the token dies
    with it."""
    _, secret = personal(viewer, org)
    with tenant_scope(org):
        Membership.objects.filter(user=viewer).delete()
    gone = bearer(secret).get(f"/api/v1/o/{org.slug}/")
    assert gone.status_code == 401
    assert "no longer a member" in gone.json()["detail"]


def test_refused_tokens_are_audited_at_most_once_a_minute(org, viewer):
    token, secret = personal(viewer, org)
    with tenant_scope(org):
        tokens.revoke_token(token, by=viewer)
    unknown = "tsk_" + "x" * 43
    for _ in range(3):
        assert bearer(unknown).get(f"/api/v1/o/{org.slug}/").status_code == 401
        assert bearer(secret).get(f"/api/v1/o/{org.slug}/").status_code == 401
    with all_tenants():
        rejected = list(AuditEvent.objects.filter(action="api_token.reject").order_by("seq"))
    by_org = {(e.organization_id, e.data["reason"]) for e in rejected}
    assert len(rejected) == 2  # one per refused credential and reason, not one per request
    assert (None, "Invalid token.") in by_org  # unknown: the global log, no part of the secret
    assert (org.pk, "This token was revoked.") in by_org
    assert all(unknown[4:12] not in str(e.data) for e in rejected)


def test_an_inactive_users_token_gets_401(org, viewer):
    _, secret = personal(viewer, org)
    viewer.is_active = False
    viewer.save()
    assert bearer(secret).get(f"/api/v1/o/{org.slug}/").status_code == 401


def test_the_secret_is_shown_once_and_never_stored_logged_or_audited(org, viewer, caplog):
    caplog.set_level(logging.DEBUG)
    client = client_for(viewer)
    page = client.post(
        f"/o/{org.slug}/settings/tokens/",
        {"name": "laptop", "scope": "read", "expires_in_days": "30"},
    )
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    with tenant_scope(org):
        token = ApiToken.objects.get(name="laptop")
    start = html.index('id="new-token-secret"')
    secret = html[start:].split('value="', 1)[1].split('"', 1)[0]
    assert secret.startswith("tsk_") and len(secret) == 47
    assert secret.startswith(token.prefix)
    assert token.token_hash == tokens.hash_secret(secret)
    # It works, and it is never shown again.
    assert bearer(secret).get(f"/api/v1/o/{org.slug}/").status_code == 200
    again = client.get(f"/o/{org.slug}/settings/tokens/").content.decode()
    assert secret not in again and f"{token.prefix}…" in again
    assert secret not in client.get(f"/api/v1/o/{org.slug}/tokens/").content.decode()
    # Not in a column, an audit event or a log line.
    with all_tenants():
        stored = ApiToken.objects.filter(pk=token.pk).values().get()
        audit_rows = list(AuditEvent.objects.values_list("data", "target_repr", "actor_label"))
    assert secret not in repr(stored)
    assert secret not in repr(audit_rows)
    assert secret not in caplog.text
    [created] = events(org, "api_token.create")
    assert created.data["prefix"] == token.prefix


def test_the_api_returns_the_secret_once_at_creation(org, viewer):
    client = client_for(viewer)
    response = client.post(
        f"/api/v1/o/{org.slug}/tokens/",
        {"name": "script", "scope": "read", "expires_in_days": 30},
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert response["Cache-Control"] == "no-store"
    assert bearer(body["secret"]).get(f"/api/v1/o/{org.slug}/").status_code == 200
    [listed] = client.get(f"/api/v1/o/{org.slug}/tokens/").json()
    assert "secret" not in listed and listed["prefix"] == body["prefix"]


def test_a_token_cannot_manage_tokens(org, admin):
    _, secret = personal(admin, org, "write")
    client = bearer(secret)
    for path in ("tokens/", "service-accounts/"):
        response = client.post(
            f"/api/v1/o/{org.slug}/{path}",
            {"name": "successor", "scope": "write", "role": "admin"},
            content_type="application/json",
        )
        assert response.status_code == 401, path
    with tenant_scope(org):
        assert ApiToken.objects.count() == 1


def test_use_is_audited_at_most_once_a_minute_per_token(org, viewer):
    token, secret = personal(viewer, org)
    other, other_secret = personal(viewer, org)
    client = bearer(secret)
    for _ in range(3):
        assert client.get(f"/api/v1/o/{org.slug}/").status_code == 200
    bearer(other_secret).get(f"/api/v1/o/{org.slug}/members/")
    uses = events(org, "api_token.use")
    assert [e.target_id for e in uses] == [str(token.pk), str(other.pk)]
    assert uses[0].data == {
        "prefix": token.prefix,
        "method": "GET",
        "path": f"/api/v1/o/{org.slug}/",
    }
    assert uses[0].actor_kind == "token"
    with tenant_scope(org):
        token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_ip == "127.0.0.1"
    first_use = token.last_used_at
    # A minute later the next request is recorded again, and last_used_at moves.
    with tenant_scope(org):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=first_use - timedelta(seconds=61))
    client.get(f"/api/v1/o/{org.slug}/")
    assert len(events(org, "api_token.use")) == 3
    with tenant_scope(org):
        token.refresh_from_db()
    assert token.last_used_at > first_use - timedelta(seconds=61)


def test_revoking_is_audited_and_takes_effect_at_once(org, viewer):
    token, secret = personal(viewer, org)
    client = client_for(viewer)
    assert client.post(f"/o/{org.slug}/settings/tokens/{token.pk}/revoke/").status_code == 302
    [revoked] = events(org, "api_token.revoke")
    assert revoked.data == {"prefix": token.prefix, "name": "test"}
    assert revoked.actor_label == viewer.email
    assert bearer(secret).get(f"/api/v1/o/{org.slug}/").status_code == 401
    page = client.get(f"/o/{org.slug}/settings/tokens/").content.decode()
    assert "revoked" in page


def test_a_member_cannot_revoke_someone_elses_token(org, viewer, editor):
    token, secret = personal(editor, org)
    response = client_for(viewer).post(f"/o/{org.slug}/settings/tokens/{token.pk}/revoke/")
    assert response.status_code == 404
    api = client_for(viewer).post(f"/api/v1/o/{org.slug}/tokens/{token.pk}/revoke/")
    assert api.status_code == 404
    assert bearer(secret).get(f"/api/v1/o/{org.slug}/").status_code == 200


def test_personal_tokens_must_expire_within_a_year(org, viewer):
    with pytest.raises(services.ServiceError):
        personal(viewer, org, days=tokens.NEVER)
    with pytest.raises(services.ServiceError):
        personal(viewer, org, days=366)
    response = client_for(viewer).post(
        f"/api/v1/o/{org.slug}/tokens/",
        {"name": "forever", "expires_in_days": 0},
        content_type="application/json",
    )
    assert response.status_code == 400


def test_service_accounts_are_created_by_admins_and_act_with_their_own_role(
    org, admin, editor, aws_env
):
    denied = client_for(editor).post(
        f"/o/{org.slug}/settings/service-accounts/", {"name": "sneaky", "role": "admin"}
    )
    assert denied.status_code == 403
    client = client_for(admin)
    created = client.post(
        f"/api/v1/o/{org.slug}/service-accounts/",
        {"name": "terraform-ci", "role": "viewer"},
        content_type="application/json",
    )
    assert created.status_code == 201
    owner_role = client.post(
        f"/api/v1/o/{org.slug}/service-accounts/",
        {"name": "root", "role": "owner"},
        content_type="application/json",
    )
    assert owner_role.status_code == 400
    no_role = client.post(  # was a 500: the service requires a role the API did not
        f"/api/v1/o/{org.slug}/service-accounts/",
        {"name": "no-role"},
        content_type="application/json",
    )
    assert no_role.status_code == 400
    assert list(no_role.json()["errors"]) == ["role"]
    account_pk = created.json()["id"]
    minted = client.post(
        f"/api/v1/o/{org.slug}/service-accounts/{account_pk}/tokens/",
        {"name": "pipeline", "scope": "write", "expires_in_days": 0},
        content_type="application/json",
    ).json()
    assert minted["expires_at"] is None  # "never" is for service accounts only
    sa = bearer(minted["secret"])
    make_account(org, "123456789012", role=False)
    listed = sa.get(accounts_url(org))
    assert listed.status_code == 200
    # Not team-scoped: a viewer service account sees the organization's accounts.
    assert [a["account_id"] for a in listed.json()["results"]] == ["123456789012"]
    # A viewer service account cannot register an AWS account, whatever its token's scope.
    assert sa.post(accounts_url(org), ACCOUNT, content_type="application/json").status_code == 403
    assert sa.get(f"/api/v1/o/{org.slug}/").json()["role"] == "viewer"
    [use] = events(org, "api_token.use")
    assert use.actor_label == f"service account terraform-ci via token {minted['prefix']}"


def test_service_account_pages_show_the_secret_once(org, admin):
    client = client_for(admin)
    client.post(f"/o/{org.slug}/settings/service-accounts/", {"name": "ci", "role": "viewer"})
    with tenant_scope(org):
        account = tokens.ServiceAccount.objects.get(name="ci")
    page = client.post(
        f"/o/{org.slug}/settings/service-accounts/{account.pk}/tokens/",
        {"name": "pipeline", "scope": "ci", "expires_in_days": "90"},
    )
    assert page.status_code == 200
    html = page.content.decode()
    secret = html.split('id="new-token-secret"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    assert bearer(secret).get(f"/api/v1/o/{org.slug}/").status_code == 200
    listing = client.get(f"/o/{org.slug}/settings/service-accounts/").content.decode()
    assert secret not in listing and secret[: tokens.PREFIX_LENGTH] in listing
    with tenant_scope(org):
        token = ApiToken.objects.get(service_account=account)
    revoke = f"/o/{org.slug}/settings/service-accounts/{account.pk}/tokens/{token.pk}/revoke/"
    assert revoke in listing
    assert client.post(revoke).status_code == 302
    assert bearer(secret).get(f"/api/v1/o/{org.slug}/").status_code == 401


def test_another_organizations_tokens_and_service_accounts_are_404(org, other_org, owner, outsider):
    with tenant_scope(other_org):
        theirs, _ = tokens.create_personal_token(
            Membership.objects.get(user=outsider), name="t", scope="read"
        )
        account = tokens.create_service_account(other_org, name="x", role="viewer", by=outsider)
        sa_token, _ = tokens.create_service_account_token(
            account, name="y", scope="read", by=outsider
        )
    client = client_for(owner)
    for path in (
        f"/o/{org.slug}/settings/tokens/{theirs.pk}/revoke/",
        f"/o/{org.slug}/settings/service-accounts/{account.pk}/tokens/",
        f"/o/{org.slug}/settings/service-accounts/{account.pk}/tokens/{sa_token.pk}/revoke/",
        f"/api/v1/o/{org.slug}/tokens/{theirs.pk}/revoke/",
        f"/api/v1/o/{org.slug}/service-accounts/{account.pk}/tokens/",
        f"/api/v1/o/{org.slug}/service-accounts/{account.pk}/tokens/{sa_token.pk}/revoke/",
    ):
        assert client.post(path, {"name": "n", "scope": "read"}).status_code == 404, path
    with tenant_scope(other_org):
        assert not ApiToken.objects.filter(revoked_at__isnull=False).exists()
        assert ApiToken.objects.count() == 2
    assert "globex" not in client.get(f"/o/{org.slug}/settings/service-accounts/").content.decode()


def test_the_token_endpoints_are_in_the_openapi_schema(viewer):
    schema = client_for(viewer).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    # Bearer tokens are a documented security scheme of every endpoint that takes them.
    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    listed = schema["paths"]["/api/v1/o/{org_slug}/inventory/accounts/"]["get"]["security"]
    assert {"bearerToken": []} in listed
    paths = schema["paths"]
    for path in (
        "/api/v1/o/{org_slug}/tokens/",
        "/api/v1/o/{org_slug}/tokens/{id}/revoke/",
        "/api/v1/o/{org_slug}/service-accounts/",
        "/api/v1/o/{org_slug}/service-accounts/{id}/tokens/",
        "/api/v1/o/{org_slug}/service-accounts/{account_pk}/tokens/{id}/revoke/",
    ):
        assert path in paths, sorted(paths)


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_of_one_token_audit_one_use(org, viewer):
    """The conditional UPDATE claims the minute: a request racing one that holds the row waits,
    re-reads last_used_at and records nothing."""

    token, _ = personal(viewer, org)
    claimed_first = threading.Event()
    results = {}

    def first():
        with transaction.atomic():
            results["first"] = tokens.note_use(token, ip="10.0.0.1", method="GET", path="/a")
            claimed_first.set()
            threading.Event().wait(0.5)  # hold the row lock while the second one tries
        connection.close()

    def second():
        claimed_first.wait(5)
        results["second"] = tokens.note_use(token, ip="10.0.0.2", method="GET", path="/b")
        connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == {"first": True, "second": False}
    assert [e.data["path"] for e in events(org, "api_token.use")] == ["/a"]


def test_unknown_tokens_from_rotating_addresses_cannot_flood_the_audit_log(
    org, settings, one_cap_window
):

    for i in range(UNKNOWN_REJECTIONS_PER_INTERVAL + 20):
        client = Client(HTTP_AUTHORIZATION="Bearer tsk_" + "y" * 43, REMOTE_ADDR=f"10.9.{i}.1")
        assert client.get(f"/api/v1/o/{org.slug}/").status_code == 401
    for i in range(5):  # one IPv6 /64: one host
        client = Client(
            HTTP_AUTHORIZATION="Bearer tsk_" + "z" * 43, REMOTE_ADDR=f"2001:db8:1:2::{i + 1}"
        )
        client.get(f"/api/v1/o/{org.slug}/")
    with all_tenants():
        written = AuditEvent.objects.filter(action="api_token.reject").count()
    assert written == UNKNOWN_REJECTIONS_PER_INTERVAL
