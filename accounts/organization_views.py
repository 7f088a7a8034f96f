"""A signed-in user's own way into organizations, outside any organization: creating one, and
answering an invitation to one (both linked from the home page)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tagsense.tenancy.db import tenant_scope
from tagsense.tenancy.resolve import invitations_of

from . import services
from .forms import NewOrganizationForm


@login_required
def new_organization(request):
    """Create an organization and become its owner (who may: settings.TAGSENSE_ORG_CREATION).
    The service writes the organization, the owner membership and their audit events in one
    transaction; the new dashboard then guides through the first steps."""
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
