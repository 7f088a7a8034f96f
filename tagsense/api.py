"""API conventions: RFC 9457 problem details for every error, 401 for anonymous callers, request
bodies bounded in size and depth."""

from __future__ import annotations

import codecs
import io
from http import HTTPStatus

from django.conf import settings
from django.http import JsonResponse
from rest_framework import authentication, exceptions, metadata, pagination, parsers
from rest_framework.response import Response

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem(status: int, detail: str = "", **extra) -> dict:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def problem_exception_handler(exc, context):
    from rest_framework.views import exception_handler  # noqa: PLC0415 - DRF's settings import this module

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
        from rest_framework.generics import GenericAPIView  # noqa: PLC0415 - DRF's settings import this module

        if (
            getattr(view, "serializer_class", None) is None
            and type(view).get_serializer_class is GenericAPIView.get_serializer_class
        ):
            return {}
        return super().determine_actions(request, view)


# JSON request bodies nest at most this deep (a rule spec, the deepest legitimate body, is 4).
MAX_JSON_DEPTH = 32


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is larger than this server accepts."
    default_code = "payload_too_large"


def read_bounded(stream) -> bytes:
    """The whole body, or 413 past DATA_UPLOAD_MAX_MEMORY_SIZE. DRF's parsers read the request
    stream themselves, so Django's own check (on request.body and request.POST) never runs."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(body) > limit:
        raise PayloadTooLarge()
    return body


def _check_json(value) -> None:
    """ParseError when `value` nests deeper than MAX_JSON_DEPTH or holds a NUL character (no
    text column takes one: PostgreSQL refuses it in text and jsonb alike)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise exceptions.ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                item = item.values()
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and "\x00" in item:
            raise exceptions.ParseError("JSON text may not contain a NUL character (\\u0000).")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (the API's default), bounded: at most DATA_UPLOAD_MAX_MEMORY_SIZE
    bytes (413), MAX_JSON_DEPTH levels and no NUL character (400). Without the depth bound a
    deeply nested body made the json module raise RecursionError, a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = read_bounded(stream)
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = codecs.decode(body, encoding)
            parse_constant = parsers.json.strict_constant if self.strict else None
            data = parsers.json.loads(text, parse_constant=parse_constant)
        except RecursionError:
            raise exceptions.ParseError(
                f"JSON nested deeper than {MAX_JSON_DEPTH} levels."
            ) from None
        except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, int digit limits
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        _check_json(data)
        return data


class FormParser(parsers.FormParser):
    """DRF's form parser, bounded like JSONParser (413 past DATA_UPLOAD_MAX_MEMORY_SIZE)."""

    def parse(self, stream, media_type=None, parser_context=None):
        return super().parse(io.BytesIO(read_bounded(stream)), media_type, parser_context)
