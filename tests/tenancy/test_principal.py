"""Principals: who answers for an action, whatever credential carried it."""

import pytest

from accounts import tokens
from accounts.models import Membership
from tagsense.tenancy.context import Actor, Principal, same_principal
from tagsense.tenancy.db import tenant_scope

pytestmark = pytest.mark.django_db


def test_a_person_is_one_principal_by_session_and_by_each_token(org, admin, owner):
    with tenant_scope(org):
        membership = Membership.objects.get(user=admin)
        first, _ = tokens.create_personal_token(membership, name="a", scope="read")
        second, _ = tokens.create_personal_token(membership, name="b", scope="read")
    session = Actor.for_user(admin)
    assert same_principal(session, tokens.token_actor(first))
    assert same_principal(tokens.token_actor(first), tokens.token_actor(second))
    assert not same_principal(Actor.for_user(owner), tokens.token_actor(first))
    assert session.principal == Principal("user", str(admin.pk))


def test_a_service_account_is_one_principal_by_each_token_and_never_a_person(org, admin):
    with tenant_scope(org):
        account = tokens.create_service_account(org, name="ci", role="admin", by=admin)
        other = tokens.create_service_account(org, name="cd", role="admin", by=admin)
        first, _ = tokens.create_service_account_token(account, name="a", scope="read", by=admin)
        second, _ = tokens.create_service_account_token(account, name="b", scope="read", by=admin)
        third, _ = tokens.create_service_account_token(other, name="c", scope="read", by=admin)
    assert same_principal(tokens.token_actor(first), tokens.token_actor(second))
    assert same_principal(tokens.token_actor(first), f"service_account:{account.pk}")
    assert not same_principal(tokens.token_actor(first), tokens.token_actor(third))
    # A service account's id may equal a user's id: still two principals.
    assert not same_principal(f"service_account:{admin.pk}", Actor.for_user(admin))


def test_nobody_is_the_same_as_anybody():
    anonymous = Actor(Actor.ANONYMOUS)
    assert not same_principal(anonymous, anonymous)
    assert not same_principal("", "")
    assert not same_principal(Actor(Actor.TOKEN, "7", "legacy"), Actor(Actor.TOKEN, "7", "legacy"))
    assert Principal.parse("robot:1") is None and Principal.parse("user:") is None


def test_the_principal_travels_with_the_actor_to_celery(org, admin):
    with tenant_scope(org):
        account = tokens.create_service_account(org, name="ci", role="admin", by=admin)
        token, _ = tokens.create_service_account_token(account, name="a", scope="read", by=admin)
    actor = tokens.token_actor(token)
    again = Actor.from_dict(actor.as_dict())
    assert again.principal == Principal("service_account", str(account.pk))
