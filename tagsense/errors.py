"""Error pages: problem+json under /api/, HTML elsewhere."""

from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error

from .api import problem_json_response


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return problem_json_response(404, "Not found.")
    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return problem_json_response(500, "Internal error; the request id names it in the logs.")
    return html_server_error(request)
