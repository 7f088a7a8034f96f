"""`POST /api/v1/o/<org>/policies/ci-check/`: a Terraform plan (`terraform show -json`) or a
CloudFormation template checked against the organization's active tag rules (docs/ci.md).

A check changes nothing and is not audited per call (a pipeline may run it on every push); the
token's use is, sampled once a minute (docs/api.md). Tokens need the `ci` (or `write`) scope.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from policies.ci.check import check
from policies.ci.cloudformation import parse_cloudformation
from policies.ci.plan import MAX_DOCUMENT_BYTES, DocumentError, parse_terraform_plan
from policies.ci.report import build_response
from policies.matching import EvaluationTimeout, time_limit
from tagsense.api import PROBLEM_CONTENT_TYPE, problem
from tagsense.tenancy.api import OrganizationAPIView

SOURCES = ("terraform", "cloudformation")


def _problem(status: int, detail: str, **extra) -> Response:
    response = Response(problem(status, detail, **extra), status=status)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


class CICheckView(OrganizationAPIView):
    # Reading the organization's rules is all it does: `view` for every role, and the `ci`
    # token scope may POST here (accounts.tokens.CI_WRITE_ROUTES).
    read_action = write_action = "view"

    @extend_schema(
        parameters=[
            OpenApiParameter("source", OpenApiTypes.STR, enum=list(SOURCES), required=True)
        ],
        request={"application/json": OpenApiTypes.OBJECT, "application/yaml": OpenApiTypes.STR},
        responses={
            200: OpenApiResponse(
                response=OpenApiTypes.OBJECT, description="docs/ci.md: the report with its JUnit"
            )
        },
    )
    def post(self, request, *args, **kwargs):
        from policies.models import Rule

        source = request.query_params.get("source", "")
        if source not in SOURCES:
            return _problem(400, "source must be terraform or cloudformation")
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared >= MAX_DOCUMENT_BYTES:
            return _problem(413, f"the document is {declared} bytes: the limit is under 50 MiB")
        # The raw stream, not request.body: Django caps request.body at
        # DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) for every endpoint; this one alone takes more.
        body = request._request.read(MAX_DOCUMENT_BYTES)
        if len(body) >= MAX_DOCUMENT_BYTES:
            return _problem(413, "the document is 50 MiB or more")
        try:
            planned = (
                parse_terraform_plan(body) if source == "terraform" else parse_cloudformation(body)
            )
        except DocumentError as exc:
            return _problem(
                400,
                str(exc),
                title="Invalid document",
                errors=[{"path": exc.path, "detail": exc.message}],
            )
        rules = [
            rule.rule_spec for rule in Rule.objects.restrict(self.membership).filter(active=True)
        ]
        seconds = settings.TAGSENSE_CI_CHECK_SECONDS
        try:
            with time_limit(seconds):
                results = check(planned, rules)
        except EvaluationTimeout:
            return _problem(
                422,
                f"checking this document against the rules took more than {seconds} seconds: "
                "check a smaller plan or template, or shorten its longest tag values",
                title="Check took too long",
            )
        return Response(build_response(results, [r.id for r in rules], source))
