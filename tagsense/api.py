"""API conventions: RFC 9457 problem details for every error, 401 for anonymous callers."""

from __future__ import annotations

from http import HTTPStatus

from django.http import JsonResponse
from rest_framework import authentication, exceptions, metadata, pagination

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem(status: int, detail: str = "", **extra) -> dict:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def problem_exception_handler(exc, context):
    from rest_framework.response import Response
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = problem(response.status_code, "The request has invalid fields.", errors=exc.detail)
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        body = problem(response.status_code, str(detail))
    problem_response = Response(body, status=response.status_code, headers=dict(response.items()))
    problem_response.content_type = PROBLEM_CONTENT_TYPE
    return problem_response


def problem_json_response(status: int, detail: str = "") -> JsonResponse:
    return JsonResponse(problem(status, detail), status=status, content_type=PROBLEM_CONTENT_TYPE)


class Pagination(pagination.LimitOffsetPagination):
    """limit/offset pages of at most 500 rows."""

    max_limit = 500


class SessionAuthentication(authentication.SessionAuthentication):
    """Session cookies (the browser) with a WWW-Authenticate challenge, so anonymous is 401."""

    def authenticate_header(self, request):
        return 'Session realm="api"'


class Metadata(metadata.SimpleMetadata):
    """DRF's answer to OPTIONS. A view that reads its body itself and declares no serializer
    (the CI check takes a raw plan or template) lists no fields instead of failing."""

    def determine_actions(self, request, view):
        from rest_framework.generics import GenericAPIView

        if (
            getattr(view, "serializer_class", None) is None
            and type(view).get_serializer_class is GenericAPIView.get_serializer_class
        ):
            return {}
        return super().determine_actions(request, view)
