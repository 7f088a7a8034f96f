"""docs/permissions.md is rendered from accounts/roles.py: a change to the roles that is not
re-rendered fails here."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts import roles
from accounts.permissions import render_permissions_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"


def test_the_committed_matrix_is_what_the_code_renders():
    assert DOC.read_text() == render_permissions_markdown(), (
        "docs/permissions.md is stale: run `python manage.py permissions_doc`"
    )
    call_command("permissions_doc", "--check")


def test_the_matrix_follows_a_change_of_roles(monkeypatch):
    monkeypatch.setitem(roles.ACTIONS, "audit", frozenset({roles.Role.OWNER}))
    changed = render_permissions_markdown()
    assert changed != DOC.read_text()
    assert "| `audit` | yes | — | — | — | — |" in changed
    with pytest.raises(CommandError, match="stale"):
        call_command("permissions_doc", "--check")


def test_the_matrix_says_who_sees_every_account():
    text = DOC.read_text()
    assert "| AWS accounts seen | all | all | their teams' | all | their teams' |" in text
    assert "| `audit` | yes | yes | — | yes | — |" in text
