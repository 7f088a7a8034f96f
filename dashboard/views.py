"""Pages composed from the reads of several apps: the organization's dashboard and a team's
page. Each figure comes from the app that owns it (inventory.summary, policies.scoring.scores)."""

from __future__ import annotations

from django.views.generic import TemplateView

from accounts.access import access_team_by_slug
from accounts.forms import TeamForm, TeamMemberForm
from accounts.models import Membership, Team, TeamMembership
from accounts.roles import role_allows
from audit.models import AuditEvent
from inventory import role, summary
from inventory.access import team_scope
from policies.models import Framework
from policies.scoring.scores import dashboard_summary
from tagsense.tenancy.views import OrganizationViewMixin


class DashboardView(OrganizationViewMixin, TemplateView):
    template_name = "dashboard/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        m = self.membership
        context["member_count"] = Membership.objects.restrict(m).active().count()
        context["teams"] = Team.objects.restrict(m).with_member_count()
        context["my_teams"] = Team.objects.restrict(m).filter(memberships__user=m.user)
        if role_allows(m.role, "audit"):
            context["recent_events"] = AuditEvent.objects.restrict(m, "audit")[:8]
        scope = team_scope(self.request, m)
        context["team_scope"] = scope
        context.update(summary.overview(m, scope))
        context.update(dashboard_summary(m, scope["accounts"]))
        context["onboarding"] = onboarding_steps(m)
        return context


def onboarding_steps(membership) -> dict | None:
    """The first steps of an organization, each done or not, with the action only for roles
    that may take it (the others are told whom to ask); None once every step is done.
    Counts what the member may see (restrict()), so an editor in no team is not told to
    connect an account the organization already has: their step says to ask for a team."""
    first_account = summary.first_account(membership)
    steps = {
        "account": first_account is not None,
        "scan": summary.has_scanned(membership),
        "framework": Framework.objects.restrict(membership).exists(),
        "members": Membership.objects.restrict(membership).count() > 1,
    }
    if all(steps.values()):
        return None
    context = {
        "steps": steps,
        "done": sum(steps.values()),
        "total": len(steps),
        "first_account": first_account,
        "can_manage": role_allows(membership.role, "manage"),
        "can_scan": role_allows(membership.role, "change"),
    }
    if first_account is not None and not steps["scan"] and context["can_manage"]:
        context["connect"] = role.connect_context(first_account, membership.organization)
    return context


class TeamDetailView(OrganizationViewMixin, TemplateView):
    """A team: its members and the AWS accounts it holds (of those the member may see)."""

    template_name = "accounts/team_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        team = access_team_by_slug(self.membership, self.kwargs["team_slug"])
        members = TeamMembership.objects.restrict(self.membership).filter(team=team)
        in_team = {tm.user_id for tm in members}
        candidates = (
            Membership.objects.restrict(self.membership)
            .active()
            .exclude(user_id__in=in_team)
            .select_related("user")
        )
        context.update(
            team=team,
            team_accounts=summary.held_by_team(self.membership, team),
            team_members=members.select_related("user"),
            can_manage=role_allows(self.membership.role, "manage"),
            team_form=TeamForm(initial={"name": team.name, "description": team.description}),
            member_form=TeamMemberForm(members=candidates),
        )
        return context
