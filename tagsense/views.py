"""Project-level pages: home (pick an organization), health checks, sections not yet built."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connections
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import services
from tagsense.api import problem_json_response
from tagsense.tenancy.db import tenant_scope, tenant_settings_problem
from tagsense.tenancy.resolve import invitations_of, memberships_of


def favicon(request):
    """Browsers ask for /favicon.ico whatever the page links: the SVG icon, not a 404 a page."""
    from django.templatetags.static import static

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


@login_required
def new_organization(request):
    """Create an organization and become its owner (who may: settings.TAGSENSE_ORG_CREATION).
    The service writes the organization, the owner membership and their audit events in one
    transaction; the new dashboard then guides through the first steps."""
    from accounts.forms import NewOrganizationForm

    if not services.may_create_organization(request.user):
        return render(request, "accounts/new_organization.html", {"refused": True}, status=403)
    form = NewOrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = services.create_organization(
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                owner=request.user,
            )
        except services.ServiceError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{organization.name} is ready; you are its owner.")
            return redirect("dashboard", org_slug=organization.slug)
    return render(request, "accounts/new_organization.html", {"form": form})


@login_required
@require_POST
def answer_invitation(request, pk: int, answer: str):
    """Accept or decline one of the caller's own pending invitations (404 for anyone else's)."""
    invitation = next((m for m in invitations_of(request.user) if m.pk == pk), None)
    if invitation is None or answer not in ("accept", "decline"):
        raise Http404("No such invitation.")
    with tenant_scope(invitation.organization, membership=None):
        if answer == "accept":
            services.accept_invitation(invitation)
            messages.success(request, f"You joined {invitation.organization.name}.")
            return redirect("dashboard", org_slug=invitation.organization.slug)
        services.decline_invitation(invitation)
    messages.info(request, f"You declined the invitation to {invitation.organization.name}.")
    return redirect("home")


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
    from tagsense.celery import app

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
