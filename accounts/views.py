"""Organization pages: settings (members, teams, SSO) and the actions on teams. The dashboard
and a team's page read from several apps: they live in dashboard/."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import TemplateView

from tagsense.tenancy.views import OrganizationViewMixin

from . import oidc, services
from .access import access_membership_by_id, access_sso_mapping_by_id, access_team_by_slug
from .forms import (
    AddMemberForm,
    BreakGlassForm,
    GroupMappingForm,
    OIDCForm,
    OrganizationForm,
    RequireSSOForm,
    RoleForm,
    SAMLForm,
    SecurityForm,
    TeamForm,
    TeamMemberForm,
)
from .mfa import users_with_mfa
from .models import Membership, SSOGroupMapping, Team, TeamMembership, User
from .roles import role_allows
from .sso.config import add_group_mapping, remove_group_mapping, set_break_glass, set_sso_required
from .sso.metadata import (
    DEFAULT_ATTRIBUTES,
    IdPSettings,
    describe_certificate,
    fetch_metadata,
    settings_from_metadata,
)
from .sso.saml import configure_saml, idp_settings, saml_app


class ActionView(OrganizationViewMixin, TemplateView):
    """A POST-only action: validate a form, call one service, report, go back."""

    form_class = None
    required_action = "manage"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = self.get_form()
        if form is not None and not form.is_valid():
            for field, errors in form.errors.items():
                messages.error(request, f"{field}: {' '.join(errors)}")
            return redirect(self.get_success_url())
        try:
            self.perform(form.cleaned_data if form is not None else {})
        except services.ServiceError as exc:
            messages.error(request, str(exc))
        return redirect(self.get_success_url())

    def get_form(self):
        return self.form_class(self.request.POST) if self.form_class else None

    def get_success_url(self):
        return reverse("settings", kwargs={"org_slug": self.organization.slug})

    def perform(self, data):
        raise NotImplementedError


class SettingsView(OrganizationViewMixin, TemplateView):
    template_name = "accounts/settings.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        m = self.membership
        context["can_manage"] = role_allows(m.role, "manage")
        context["can_audit"] = role_allows(m.role, "audit")
        context["members"] = Membership.objects.restrict(m).select_related("user")
        context["teams"] = Team.objects.restrict(m).with_member_count()
        context["org_form"] = OrganizationForm(initial={"name": self.organization.name})
        context["security_form"] = SecurityForm(
            initial={"require_mfa": self.organization.require_mfa}
        )
        active = [m for m in context["members"] if not m.is_pending]
        with_mfa = users_with_mfa([m.user_id for m in active])
        context["members_without_mfa"] = [m for m in active if m.user_id not in with_mfa]
        context["member_form"] = AddMemberForm()
        context["team_form"] = TeamForm()
        context["role_form"] = RoleForm()
        return context


class UpdateOrganizationView(ActionView):
    form_class = OrganizationForm

    def perform(self, data):
        services.update_organization(self.organization, name=data["name"])
        messages.success(self.request, "Organization renamed.")


class UpdateSecurityView(ActionView):
    form_class = SecurityForm

    def perform(self, data):
        services.set_require_mfa(self.organization, require=data["require_mfa"])
        if data["require_mfa"]:
            messages.success(
                self.request,
                "Two-factor authentication is now required. Members without it are asked to "
                "set it up before they reach this organization.",
            )
        else:
            messages.success(self.request, "Two-factor authentication is no longer required.")

    def get_success_url(self):
        return reverse("settings", kwargs={"org_slug": self.organization.slug}) + "#security"


class AddMemberView(ActionView):
    form_class = AddMemberForm

    def perform(self, data):
        membership = services.add_member(
            self.organization, email=data["email"], role=data["role"], by=self.membership
        )
        messages.success(
            self.request,
            f"{membership.user.email} invited as {membership.role}; "
            "they join when they accept on their TagSense home page.",
        )


class ChangeRoleView(ActionView):
    form_class = RoleForm

    def perform(self, data):
        target = access_membership_by_id(self.membership, self.kwargs["pk"], "manage")
        services.change_role(target, role=data["role"], by=self.membership)
        messages.success(self.request, f"{target.user.email} is now {target.role}.")


class RemoveMemberView(ActionView):
    def perform(self, data):
        target = access_membership_by_id(self.membership, self.kwargs["pk"], "manage")
        services.remove_member(target, by=self.membership)
        messages.success(self.request, f"{target.user.email} removed.")


class CreateTeamView(ActionView):
    form_class = TeamForm

    def perform(self, data):
        team = services.create_team(
            self.organization, name=data["name"], description=data["description"]
        )
        messages.success(self.request, f"Team {team.name} created.")


class TeamActionView(ActionView):
    def get_team(self):
        return access_team_by_slug(self.membership, self.kwargs["team_slug"], "manage")

    def get_success_url(self):
        return reverse(
            "team-detail",
            kwargs={"org_slug": self.organization.slug, "team_slug": self.kwargs["team_slug"]},
        )


class UpdateTeamView(TeamActionView):
    form_class = TeamForm

    def perform(self, data):
        services.update_team(self.get_team(), name=data["name"], description=data["description"])
        messages.success(self.request, "Team updated.")


class DeleteTeamView(TeamActionView):
    def perform(self, data):
        team = self.get_team()
        services.delete_team(team)
        messages.success(self.request, f"Team {team.name} deleted.")

    def get_success_url(self):
        return reverse("settings", kwargs={"org_slug": self.organization.slug})


class AddTeamMemberView(TeamActionView):
    def get_form(self):
        members = Membership.objects.restrict(self.membership).active().select_related("user")
        return TeamMemberForm(self.request.POST, members=members)

    def perform(self, data):
        user = User.objects.get(pk=data["user"])
        services.add_team_member(self.get_team(), user=user)
        messages.success(self.request, f"{user.email} joined the team.")


class RemoveTeamMemberView(TeamActionView):
    def perform(self, data):
        team = self.get_team()
        tm = (
            TeamMembership.objects.restrict(self.membership, "manage")
            .filter(team=team, pk=self.kwargs["pk"])
            .select_related("user")
            .first()
        )
        if tm is None:
            raise services.ServiceError("That member is not in the team.")
        services.remove_team_member(team, user=tm.user)
        messages.success(self.request, f"{tm.user.email} left the team.")


# --- single sign-on (accounts/sso/, docs/sso.md) ---------------------------------------------


class SSOSettingsView(OrganizationViewMixin, TemplateView):
    """The organization's IdP, the SP addresses to give it, group mappings, SSO-mandatory."""

    template_name = "accounts/sso_settings.html"
    required_action = "manage"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        m = self.membership
        slug = self.organization.slug
        config = idp_settings(saml_app(self.organization))
        if config:  # certificates are never put back into a form: described below instead
            initial = {k: v for k, v in vars(config).items() if k not in ("certificates", "source")}
        else:
            initial = {f"{k}_attribute": v for k, v in DEFAULT_ATTRIBUTES.items()}
        teams = Team.objects.restrict(m, "manage")
        sp = {
            name: self.request.build_absolute_uri(reverse(f"saml_{name}", args=[slug]))
            for name in ("metadata", "acs", "sls", "login")
        }
        context.update(
            idp=config,
            certificates=[describe_certificate(c) for c in config.certificates] if config else [],
            sp=sp,
            saml_form=SAMLForm(initial=initial),
            mapping_form=GroupMappingForm(teams=teams),
            mappings=SSOGroupMapping.objects.restrict(m, "manage").select_related("team"),
            owners=Membership.objects.restrict(m, "manage")
            .active()
            .filter(role="owner")
            .select_related("user"),
            can_own=role_allows(m.role, "own"),
        )
        context.update(oidc_context(self.request, self.organization))
        return context


def oidc_context(request, organization) -> dict:
    """The OpenID provider section: what to give the provider, and the form (no secret)."""
    row = oidc.configuration(organization)
    initial = {"groups_claim": oidc.DEFAULT_GROUPS_CLAIM, "scopes": oidc.DEFAULT_SCOPES}
    if row is not None:
        initial = {
            "issuer": row.issuer,
            "client_id": row.client_id,
            "groups_claim": row.groups_claim,
            "scopes": row.scopes,
        }
    provider_id = oidc.provider_id(organization)
    return {
        "oidc": row,
        "oidc_form": OIDCForm(initial=initial),
        "oidc_redirect_uri": request.build_absolute_uri(
            reverse("openid_connect_callback", kwargs={"provider_id": provider_id})
        ),
        "oidc_login_url": request.build_absolute_uri(
            reverse("openid_connect_login", kwargs={"provider_id": provider_id})
        ),
    }


class SSOActionView(ActionView):
    def get_success_url(self):
        return reverse("sso-settings", kwargs={"org_slug": self.organization.slug})


class ConfigureSAMLView(SSOActionView):
    def get_form(self):
        return SAMLForm(self.request.POST, self.request.FILES)

    def perform(self, data):
        attributes = {
            name: data[name]
            for name in (
                "email_attribute",
                "first_name_attribute",
                "last_name_attribute",
                "groups_attribute",
            )
        }
        if data["metadata_url"] or data["metadata_file"]:
            xml = data["metadata_file"] or fetch_metadata(data["metadata_url"])
            config = settings_from_metadata(xml, entity_id=data["entity_id"])
            config.source = data["metadata_url"] or "metadata-xml"
        else:
            certificates = [data["certificate"], data["next_certificate"]]
            config = IdPSettings(
                entity_id=data["entity_id"],
                sso_url=data["sso_url"],
                slo_url=data["slo_url"],
                certificates=[c for c in certificates if c.strip()],
            )
        config.want_message_signed = data["want_message_signed"]
        for name, value in attributes.items():
            setattr(config, name, value)
        configure_saml(self.organization, config)
        messages.success(self.request, "Identity provider saved.")


@method_decorator(sensitive_post_parameters("client_secret"), name="dispatch")
class ConfigureOIDCView(SSOActionView):
    form_class = OIDCForm

    def perform(self, data):
        oidc.configure_oidc(
            self.organization,
            oidc.OIDCSettings(
                issuer=data["issuer"],
                client_id=data["client_id"],
                client_secret=data["client_secret"],
                groups_claim=data["groups_claim"],
                scopes=data["scopes"],
            ),
        )
        messages.success(self.request, "OpenID provider saved.")

    def get_success_url(self):
        return super().get_success_url() + "#oidc"


class RequireSSOView(SSOActionView):
    form_class = RequireSSOForm

    def perform(self, data):
        set_sso_required(self.organization, required=data["sso_required"])
        if data["sso_required"]:
            messages.success(self.request, "Members must now sign in through the IdP.")
        else:
            messages.success(self.request, "Members may sign in with a password again.")


class AddGroupMappingView(SSOActionView):
    def get_form(self):
        teams = Team.objects.restrict(self.membership, "manage")
        return GroupMappingForm(self.request.POST, teams=teams)

    def perform(self, data):
        team = None
        if data["team"]:
            team = access_team_by_slug(self.membership, data["team"], "manage")
        add_group_mapping(self.organization, group=data["group"], team=team, role=data["role"])
        messages.success(self.request, "Group mapping added.")


class RemoveGroupMappingView(SSOActionView):
    def perform(self, data):
        mapping = access_sso_mapping_by_id(self.membership, self.kwargs["pk"], "manage")
        remove_group_mapping(mapping)
        messages.success(self.request, "Group mapping removed.")


class BreakGlassView(SSOActionView):
    required_action = "own"
    form_class = BreakGlassForm

    def perform(self, data):
        target = access_membership_by_id(self.membership, self.kwargs["pk"], "manage")
        set_break_glass(target, break_glass=data["break_glass"], by=self.membership)
        state = "keeps" if target.break_glass else "no longer has"
        messages.success(self.request, f"{target.user.email} {state} password sign-in.")
