"""Error pages: problem+json under /api/, HTML elsewhere."""

from django.core.exceptions import BadRequest, RequestDataTooBig
from django.views.defaults import bad_request as html_bad_request
from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error

from .api import problem_json_response


def bad_request(request, exception=None):
    """Django's 400s: a request it refused before or outside DRF (tagsense.security's NUL check,
    a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields, a bad Host). Only our own
    `BadRequest` messages are shown; a body too large is a 413 under /api/."""
    if not request.path.startswith("/api/"):
        return html_bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return problem_json_response(413, "The request body is larger than this server accepts.")
    detail = str(exception) if type(exception) is BadRequest else "The request is malformed."
    return problem_json_response(400, detail)


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return problem_json_response(404, "Not found.")
    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return problem_json_response(500, "Internal error; the request id names it in the logs.")
    return html_server_error(request)
