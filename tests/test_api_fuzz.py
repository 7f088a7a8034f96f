"""Schemathesis over every operation of the OpenAPI schema, against Django's live server, as an
owner and as a viewer of the organization: no 5xx, and every status code, content type, header
and body is the one the schema documents (issue 13).

The operations that take a token use a fresh write-scope token of the caller each (the viewer's
requests are refused by its role, not its scope), so no operation (a revoke) can spoil
another's credentials; the token and service-account operations
accept a signed-in session only (docs/api.md) and get one, with its CSRF token.

Bounded for CI: a few examples per operation (FUZZ_EXAMPLES raises it for a longer local run),
no deadline (a loaded machine is slow, not wrong) and derandomized, so a run is reproducible.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.conf import settings
from django.test import Client
from django.utils.crypto import get_random_string
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts import tokens
from accounts.models import Membership
from accounts.roles import Role
from tagsense.tenancy.db import tenant_scope

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
REQUEST_TIMEOUT = 60

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
]

# Operations whose request bodies a schema cannot fully describe: there the fuzzer's "valid"
# data may be refused with a 400 (still a documented status with a problem+json body; every
# other check still runs). Each entry says what the schema cannot express.
POSITIVE_DATA_NOT_CHECKED = {
    "POST /api/v1/o/{org_slug}/policies/rules/": "a rule is a spec or a YAML rule file, "
    "checked by the rule engine (policies/engine/spec.py)",
    "PUT /api/v1/o/{org_slug}/policies/rules/{rule_id}/": "the same rule spec or YAML",
    "POST /api/v1/o/{org_slug}/policies/preview/": "the same rule spec or YAML",
    "POST /api/v1/o/{org_slug}/policies/import/": "a YAML rule file",
    "POST /api/v1/o/{org_slug}/policies/frameworks/": "controls must cite rules that exist",
    "POST /api/v1/o/{org_slug}/policies/aws-tag-policies/": "an AWS tag policy document, "
    "checked by policies/aws/documents.py",
    "PUT /api/v1/o/{org_slug}/policies/aws-tag-policies/{id}/": "the same tag policy document",
    "POST /api/v1/o/{org_slug}/policies/ci-check/": "a Terraform plan or CloudFormation "
    "template (docs/ci.md)",
    "POST /api/v1/o/{org_slug}/policies/exemptions/": "the findings must exist and be open, "
    "and expires_at lie in the future",
    "POST /api/v1/o/{org_slug}/inventory/scans/": "the scope's accounts must be registered "
    "and visible to the caller",
    "POST /api/v1/o/{org_slug}/inventory/accounts/": "an account id is registered once per "
    "organization (a repeated id is a 400)",
    "POST /api/v1/o/{org_slug}/service-accounts/": "a service account's name is unique in its "
    "organization (a repeated name is a 400)",
    "POST /api/v1/o/{org_slug}/evidence/exports/": "the frameworks must be enabled in the "
    "organization, the controls theirs, the teams and accounts the organization's",
}


def _schema():

    schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    # No NUL in generated text: the API refuses it in any path, parameter or JSON string by
    # design (docs/security.md, "Bad input"; tests/test_bad_input.py). The credentials are ours.
    schema.config.generation.update(allow_x00=False, with_security_parameters=False)
    return schema


# schemathesis.pytest's own parametrisation does not run under pytest 9: the test walks the
# operations itself, one subtest each.
SCHEMA = _schema()
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


def _session_only(operation) -> bool:
    """The token endpoints document cookie authentication alone (a token cannot manage
    tokens)."""
    security = operation.definition.raw.get("security") or []
    return not any("bearerToken" in requirement for requirement in security)


def _credentials(user, organization, operation) -> tuple[dict, dict]:
    """Headers and cookies that sign `user` in for `operation`."""
    if _session_only(operation):
        client = Client()
        client.force_login(user)
        csrf = get_random_string(32)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        cookies = {settings.SESSION_COOKIE_NAME: session, settings.CSRF_COOKIE_NAME: csrf}
        return {"X-CSRFToken": csrf}, cookies

    with tenant_scope(organization):
        membership = Membership.objects.get(user=user, organization=organization)
        _, secret = tokens.create_personal_token(membership, name="fuzz", scope="write")
    return {"Authorization": f"Bearer {secret}"}, {}


@pytest.mark.parametrize("role", [Role.OWNER, Role.VIEWER])
def test_api_conforms_to_its_schema(role, live_server, org, users_by_role, subtests, aws_env):
    """One database for all operations (a transactional test flushes every table after it: per
    operation that was most of the run's time), one subtest per operation. AWS is moto's
    (an account the fuzzer registers gets scanned): an AWS failure is a documented 502,
    tested in tests/inventory, not something to fuzz."""
    assert OPERATIONS  # an operation that fails to load raises at import (result.ok())
    for operation in OPERATIONS:
        with subtests.test(msg=operation.label):
            fuzz(operation, users_by_role[role], org, live_server.url)


def fuzz(operation, user, organization, base_url: str) -> None:
    headers, cookies = _credentials(user, organization, operation)
    excluded = [positive_data_acceptance] if operation.label in POSITIVE_DATA_NOT_CHECKED else []

    @given(case=operation.as_strategy(path_parameters={"org_slug": organization.slug}))
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case):
        case.cookies = dict(cookies)  # not the fuzzer's own sessionid
        case.call_and_validate(
            base_url=base_url,
            headers=headers,
            checks=CHECKS,
            excluded_checks=excluded,
            # Not 10 s: on a loaded machine, planning the first scan loads moto's EC2 backend.
            timeout=REQUEST_TIMEOUT,
        )

    check()
