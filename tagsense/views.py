"""Project-level pages: home (pick an organization or answer an invitation), health checks."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache

from tagsense.api import problem_json_response
from tagsense.celery import app
from tagsense.tenancy.db import tenant_settings_problem
from tagsense.tenancy.resolve import invitations_of, memberships_of


def favicon(request):
    """Browsers ask for /favicon.ico whatever the page links: the SVG icon, not a 404 a page."""

    return redirect(static("favicon.svg"), permanent=True)


@login_required
def home(request):
    """Straight to the organization last used, unless invitations wait for an answer."""
    memberships = memberships_of(request.user)
    invitations = invitations_of(request.user)
    slugs = [m.organization.slug for m in memberships]
    last = request.session.get("last_org")
    if not invitations:
        if last in slugs:
            return redirect("dashboard", org_slug=last)
        if len(slugs) == 1:
            return redirect("dashboard", org_slug=slugs[0])
    return render(request, "home.html", {"memberships": memberships, "invitations": invitations})


@never_cache
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


def _check_database() -> str | None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"database unreachable: {exc.__class__.__name__}"
    # Reachable but refusing this process's tenant settings, every tenant page would be empty.
    return tenant_settings_problem()


def _check_broker() -> str | None:

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"broker unreachable: {exc.__class__.__name__}"
    return None


def _warn_audit_anchoring() -> str | None:
    """A deployment without an audit anchor store works, but cannot detect a rewritten or
    truncated audit history: say so, without reporting the deployment down."""
    if settings.AUDIT_ANCHOR_BUCKET:
        return None
    return "unanchored: no audit anchor store is configured (AUDIT_ANCHOR_BUCKET)"


@never_cache
def readyz(request):
    """503 when a dependency is down; 200 with `warnings` for what works but is weaker than it
    should be (an unanchored audit log), so monitoring sees it without taking the site down."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    failing = {name: problem for name, problem in checks.items() if problem}
    if failing:
        response = problem_json_response(503, "; ".join(failing.values()))
        return response
    body = {"status": "ready", "checks": dict.fromkeys(checks, "ok")}
    warnings = {"audit_anchoring": _warn_audit_anchoring()}
    body["warnings"] = {name: text for name, text in warnings.items() if text}
    return JsonResponse(body)
