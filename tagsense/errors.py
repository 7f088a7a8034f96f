"""Error pages: problem+json under /api/, HTML elsewhere."""

from django.core.exceptions import BadRequest, RequestDataTooBig
from django.shortcuts import render
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


def permission_denied(request, exception=None):
    """A role check refused the request: the portal's page (templates/403.html), with the menu
    of the organization the member was admitted to (tagsense.tenancy.views sets it), so the
    way on is one click. The refusal's own message is not shown: it may come from any library."""
    if request.path.startswith("/api/"):
        return problem_json_response(403, "You do not have permission to perform this action.")
    membership = getattr(request, "denied_membership", None)
    context = {}
    if membership is not None:
        context = {"organization": membership.organization, "membership": membership}
    return render(request, "403.html", context, status=403)


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return problem_json_response(404, "Not found.")
    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return problem_json_response(500, "Internal error; the request id names it in the logs.")
    return html_server_error(request)
