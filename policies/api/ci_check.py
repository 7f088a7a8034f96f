"""`POST /api/v1/o/<org>/policies/ci-check/`: a Terraform plan (`terraform show -json`) or a
CloudFormation template checked against the organization's active tag rules (docs/ci.md).

A check changes nothing and is not audited per call (a pipeline may run it on every push); the
token's use is, sampled once a minute (docs/api.md). Tokens need the `ci` (or `write`) scope.

The body may come with a Content-Length or chunked (`Transfer-Encoding: chunked`, no length):
gunicorn hands a chunked body decoded and says so with `wsgi.input_terminated`, and it is read
from there; a server that cannot (Django's development server drops it) gets a 411, never an
empty document.
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
from policies.engine.matching import EvaluationTimeout, time_limit
from policies.models import Rule
from tagsense.api import PROBLEM_CONTENT_TYPE, problem
from tagsense.tenancy.api import OrganizationAPIView

SOURCES = ("terraform", "cloudformation")


def _problem(status: int, detail: str, **extra) -> Response:
    response = Response(problem(status, detail, **extra), status=status)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _read_body(request) -> bytes | None:
    """Up to MAX_DOCUMENT_BYTES of the body; None when it is chunked and the server hands it
    over as an empty stream.

    Not request.body: Django caps it at DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) for every endpoint;
    this one alone takes more. Without a Content-Length, Django's request stream is empty (it
    reads CONTENT_LENGTH bytes): a server that marks its input as terminated (gunicorn,
    mod_wsgi) gives the decoded chunked body in wsgi.input, which is read up to the limit."""
    meta = request.META
    if meta.get("CONTENT_LENGTH"):
        return request.read(MAX_DOCUMENT_BYTES)
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if meta.get("wsgi.input_terminated"):
        stream = meta["wsgi.input"]
        parts, size = [], 0
        while size < MAX_DOCUMENT_BYTES:
            part = stream.read(min(1024 * 1024, MAX_DOCUMENT_BYTES - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
        return b"".join(parts)
    return None if chunked else request.read(MAX_DOCUMENT_BYTES)


class CICheckView(OrganizationAPIView):
    # Reading the organization's rules is all it does: `view` for every role, and the `ci`
    # token scope may POST here (accounts.tokens.CI_WRITE_ROUTES).
    read_action = write_action = "view"

    @extend_schema(
        parameters=[
            OpenApiParameter("source", OpenApiTypes.STR, enum=list(SOURCES), required=True),
            OpenApiParameter(
                "changed_only",
                OpenApiTypes.BOOL,
                description="check only created, updated and replaced resources (default: "
                "unchanged ones too)",
            ),
        ],
        request={"application/json": OpenApiTypes.OBJECT, "application/yaml": OpenApiTypes.STR},
        responses={
            200: OpenApiResponse(
                response=OpenApiTypes.OBJECT, description="docs/ci.md: the report with its JUnit"
            )
        },
    )
    def post(self, request, *args, **kwargs):

        source = request.query_params.get("source", "")
        if source not in SOURCES:
            return _problem(400, "source must be terraform or cloudformation")
        changed_only = request.query_params.get("changed_only", "false").lower()
        if changed_only not in ("true", "false", "1", "0"):
            return _problem(400, "changed_only must be true or false")
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared >= MAX_DOCUMENT_BYTES:
            return _problem(413, f"the document is {declared} bytes: the limit is under 50 MiB")
        body = _read_body(request._request)
        if body is None:
            return _problem(
                411,
                "this server cannot read a chunked body (Transfer-Encoding without "
                "Content-Length): send the document with a Content-Length",
            )
        if len(body) >= MAX_DOCUMENT_BYTES:
            return _problem(413, "the document is 50 MiB or more")
        try:
            planned = (
                parse_terraform_plan(body, changed_only=changed_only in ("true", "1"))
                if source == "terraform"
                else parse_cloudformation(body)
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
