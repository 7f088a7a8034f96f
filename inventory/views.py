"""Inventory pages: AWS accounts, resources (filters, CSV), a resource's timeline and graph,
scan runs with live progress."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.generic import TemplateView

from accounts.models import Team
from accounts.roles import role_allows
from audit.exports import csv_download, download
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tagsense.tenancy.views import OrganizationViewMixin

from . import discovery, graph, history, role, schedules, services
from .access import (
    access_account_by_id,
    access_resource_by_id,
    access_scan_by_id,
    hidden_arns,
    narrow,
    scan_scope_for,
    scans_as_seen_by,
    team_scope,
)
from .filters import ResourceFilterForm, filter_resources
from .forms import AccountEditForm, AccountForm, AccountTeamsForm, ScheduleForm, StartScanForm
from .models import AwsAccount, Edge, Resource, ScanRun, ScanSchedule, ScanUnit, TagEvent
from .runner import Scope
from .scanners.base import scanners
from .schedules import next_run


def _org_url(name: str, view, **kwargs) -> str:
    return reverse(name, kwargs={"org_slug": view.organization.slug, **kwargs})


class TeamScopeMixin:
    """Lists that default to the member's teams (the "My teams / All" switch)."""

    def team_scope(self) -> dict:
        if not hasattr(self, "_team_scope"):
            self._team_scope = team_scope(self.request, self.membership)
        return self._team_scope

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["team_scope"] = self.team_scope()
        return context


class AccountListView(OrganizationViewMixin, TeamScopeMixin, TemplateView):
    template_name = "inventory/account_list.html"
    write_action = "manage"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["accounts"] = narrow(
            AwsAccount.objects.restrict(self.membership), self.team_scope()
        ).order_by("name")
        context["can_manage"] = role_allows(self.membership.role, "manage")
        context["form"] = kwargs.get("form") or AccountForm(initial={"enabled": True})
        return context

    def post(self, request, *args, **kwargs):
        form = AccountForm(request.POST)
        if form.is_valid():
            try:
                account = services.register_account(self.organization, **form.cleaned_data)
            except services.ServiceError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    f"Account {account.account_id} registered. Give the role this external id: "
                    f"{account.external_id}",
                )
                return redirect(_org_url("account-detail", self, pk=account.pk))
        return self.render_to_response(self.get_context_data(form=form))


class AccountDetailView(OrganizationViewMixin, TemplateView):
    template_name = "inventory/account_detail.html"
    write_action = "manage"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        account = access_account_by_id(self.membership, self.kwargs["pk"])
        context["account"] = account
        context["can_manage"] = role_allows(self.membership.role, "manage")
        context["can_scan"] = role_allows(self.membership.role, "change")
        context["form"] = kwargs.get("form") or AccountEditForm(
            initial={
                "name": account.name,
                "role_arn": account.role_arn,
                "regions": account.regions,
                "enabled": account.enabled,
            }
        )
        context["resource_count"] = (
            Resource.objects.restrict(self.membership)
            .filter(account=account, deleted_at__isnull=True)
            .count()
        )
        context["scans"] = (
            ScanRun.objects.restrict(self.membership).filter(units__account=account).distinct()[:10]
        )
        context["holding_teams"] = services.teams_holding(account)
        if context["can_manage"]:
            context["connect"] = role.connect_context(account, self.organization)
            context["teams_form"] = AccountTeamsForm(
                teams=Team.objects.restrict(self.membership, "manage"),
                initial={"teams": [t.pk for t in context["holding_teams"]]},
            )
        return context

    def post(self, request, *args, **kwargs):
        account = access_account_by_id(self.membership, self.kwargs["pk"], "manage")
        form = AccountEditForm(request.POST)
        if form.is_valid():
            try:
                services.update_account(account, **form.cleaned_data)
            except services.ServiceError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Account updated.")
                return redirect(_org_url("account-detail", self, pk=account.pk))
        return self.render_to_response(self.get_context_data(form=form))


class RoleTemplateView(OrganizationViewMixin, TemplateView):
    """The CloudFormation template of the scanning role (owners and admins, who create it);
    with `?account=<id>` of an account they see, its external id is the template's default.
    Audited as a download (audit/exports.py)."""

    required_action = "manage"

    def get(self, request, *args, **kwargs):

        external_id = ""
        account_id = request.GET.get("account", "")
        if account_id:
            account = (
                AwsAccount.objects.restrict(self.membership, "manage")
                .filter(account_id=account_id)
                .first()
            )
            if account is None:
                raise Http404("No such AWS account.")
            external_id = account.external_id
        return download(
            "inventory.role_template",
            content=role.cloudformation_template(external_id=external_id),
            content_type="application/yaml",
            filename="tagsense-role.yaml",
            rows=1,
            filters=request.GET,
        )


class AccountTeamsView(OrganizationViewMixin, TemplateView):
    """POST (owners, admins): the teams that hold the account, exactly the ones ticked."""

    required_action = "manage"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        account = access_account_by_id(self.membership, self.kwargs["pk"], "manage")
        form = AccountTeamsForm(
            request.POST, teams=Team.objects.restrict(self.membership, "manage")
        )
        if not form.is_valid():
            messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        else:
            try:
                granted, revoked = services.set_account_teams(account, form.cleaned_data["teams"])
            except services.ServiceError as exc:
                messages.error(request, str(exc))
            else:
                changes = [f"{t.name} now holds it" for t in granted]
                changes += [f"{t.name} no longer holds it" for t in revoked]
                messages.success(request, "; ".join(changes) + "." if changes else "No change.")
        return redirect(_org_url("account-detail", self, pk=account.pk))


class AccountTestView(OrganizationViewMixin, TemplateView):
    """POST: assume the role and show the identity or AWS's exact error (an HTMX fragment)."""

    template_name = "inventory/partials/_connection_result.html"
    required_action = "manage"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        account = access_account_by_id(self.membership, self.kwargs["pk"], "manage")
        result = services.test_account_connection(account)
        return self.render_to_response(self.get_context_data(result=result, account=account))


class AccountDeleteView(OrganizationViewMixin, TemplateView):
    required_action = "manage"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        account = access_account_by_id(self.membership, self.kwargs["pk"], "manage")
        services.delete_account(account)
        messages.success(request, f"Account {account.account_id} and its inventory removed.")
        return redirect(_org_url("account-list", self))


class ResourceListView(OrganizationViewMixin, TeamScopeMixin, TemplateView):
    template_name = "inventory/resource_list.html"
    partial_template_name = "inventory/partials/_resource_rows.html"
    page_size = 50

    def filtered(self):
        form = ResourceFilterForm(self.request.GET or None)
        queryset = (
            narrow(Resource.objects.restrict(self.membership), self.team_scope())
            .select_related("account")
            .with_last_seen()
        )
        data = form.cleaned_data if form.is_valid() else {}
        return form, filter_resources(queryset, data)

    def get(self, request, *args, **kwargs):
        if request.GET.get("format") == "csv":
            return self.csv()
        return super().get(request, *args, **kwargs)

    def csv(self):

        _, queryset = self.filtered()
        organization = self.organization
        header = ["arn", "account", "region", "type", "id", "name", "tags",
                  "first_seen", "last_seen", "deleted_at"]  # fmt: skip

        def rows():
            # The response streams after the view returns: reopen the tenant scope.
            with tenant_scope(organization):
                for r in queryset.iterator(chunk_size=2000):
                    tags = ";".join(f"{k}={v}" for k, v in sorted(r.tags.items()))
                    yield [
                        r.arn,
                        r.account.account_id,
                        r.region,
                        r.resource_type,
                        r.resource_id,
                        r.name,
                        tags,
                        r.first_seen.isoformat(),
                        r.last_seen.isoformat(),
                        r.deleted_at.isoformat() if r.deleted_at else "",
                    ]

        return csv_download(
            "inventory.resources",
            header=header,
            rows=rows(),
            count=queryset.count(),
            filename=f"{organization.slug}-inventory.csv",
            filters=self.request.GET,
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form, queryset = self.filtered()
        page = Paginator(queryset, self.page_size).get_page(self.request.GET.get("page"))
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(
            filter_form=form,
            page_obj=page,
            resources=page.object_list,
            query_string=query.urlencode(),
            types=scanners(),
            total=page.paginator.count,
        )
        return context


class ResourceDetailView(OrganizationViewMixin, TemplateView):
    template_name = "inventory/resource_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        resource = access_resource_by_id(self.membership, self.kwargs["pk"])
        context["resource"] = resource
        context["tags"] = sorted(resource.tags.items())
        context["timeline"] = history.timeline(resource, TagEvent.objects.restrict(self.membership))
        edges = graph.neighbours(self.organization, resource.arn)
        hidden = hidden_arns(
            self.membership, [e.source_arn for e in edges] + [e.target_arn for e in edges]
        )
        context["neighbours"] = [
            e for e in edges if e.source_arn not in hidden and e.target_arn not in hidden
        ]
        return context


GRAPH_NODE_LIMIT = 150


def _graph_payload(membership, organization, resource, depth, direction=graph.DEPENDENTS):
    """Nearest first, at most GRAPH_NODE_LIMIT nodes: a shared VPC or security group would
    otherwise pull half the estate into one drawing."""
    hops = graph.blast_radius(organization, resource.arn, depth, direction)
    # Resources in accounts the member may not see are left out of the drawing.
    hidden = hidden_arns(membership, [h.arn for h in hops])
    hops = [h for h in hops if h.arn not in hidden]
    truncated = len(hops) > GRAPH_NODE_LIMIT
    arns = [resource.arn] + [h.arn for h in hops[:GRAPH_NODE_LIMIT]]
    known = {r.arn: r for r in Resource.objects.restrict(membership).filter(arn__in=arns)}
    nodes = []
    for arn in arns:
        r = known.get(arn)
        nodes.append(
            {
                "data": {
                    "id": arn,
                    "label": (r.name or r.resource_id) if r else arn.rsplit(":", 1)[-1],
                    "type": r.resource_type if r else "unknown",
                    "url": reverse(
                        "resource-detail", kwargs={"org_slug": organization.slug, "pk": r.pk}
                    )
                    if r
                    else "",
                    "root": arn == resource.arn,
                    "untagged": bool(r and not r.tags),
                }
            }
        )
    in_graph = set(arns)

    edges = [
        {
            "data": {
                "id": f"e{e.pk}",
                "source": e.source_arn,
                "target": e.target_arn,
                "label": e.kind,
            }
        }
        for e in Edge.objects.restrict(membership).filter(source_arn__in=arns)
        if e.target_arn in in_graph
    ]
    return {
        "nodes": nodes,
        "edges": edges,
        "depth": depth,
        "direction": direction,
        "reachable": len(hops),
        "truncated": truncated,
    }


class ResourceGraphView(OrganizationViewMixin, TemplateView):
    """The neighbourhood as Cytoscape JSON: blast radius at ?depth= (default 1) in ?direction=
    (dependents, dependencies or both; default both: the page first draws every neighbour, and
    the reader narrows it to the blast radius proper)."""

    def get(self, request, *args, **kwargs):
        resource = access_resource_by_id(self.membership, self.kwargs["pk"])
        try:
            depth = max(1, min(int(request.GET.get("depth", 1)), graph.MAX_DEPTH))
        except ValueError:
            depth = 1
        direction = request.GET.get("direction", graph.BOTH)
        if direction not in graph.DIRECTIONS:
            direction = graph.BOTH
        payload = _graph_payload(self.membership, self.organization, resource, depth, direction)
        return JsonResponse(payload)


class ScanListView(OrganizationViewMixin, TeamScopeMixin, TemplateView):
    template_name = "inventory/scan_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        scope = self.team_scope()
        context["scans"] = scans_as_seen_by(
            self.membership, narrow(ScanRun.objects.restrict(self.membership), scope)[:50], scope
        )
        context["can_scan"] = role_allows(self.membership.role, "change")
        context["types"] = scanners()
        context["accounts"] = AwsAccount.objects.restrict(self.membership).enabled()
        return context


class ScanStartView(OrganizationViewMixin, TemplateView):
    required_action = "change"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = StartScanForm(request.POST)
        form.is_valid()
        data = form.cleaned_data
        scope = Scope(
            account_ids=tuple(filter(None, [data.get("account", "")])),
            regions=tuple(filter(None, [data.get("region", "")])),
            types=tuple(filter(None, [data.get("type", "")])),
        )
        try:
            scope = scan_scope_for(self.membership, scope)
            with transaction.atomic():
                scan = services.start_scan(
                    self.organization, actor=Actor.for_user(request.user), scope=scope
                )
        except ValueError as exc:
            messages.error(request, str(exc))
            return redirect(_org_url("scan-list", self))
        return redirect(_org_url("scan-detail", self, pk=scan.pk))


class ScanDetailView(OrganizationViewMixin, TemplateView):
    template_name = "inventory/scan_detail.html"
    partial_template_name = "inventory/partials/_scan_progress.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        scan = access_scan_by_id(self.membership, self.kwargs["pk"])
        [scan] = scans_as_seen_by(self.membership, [scan])
        context["scan"] = scan
        # Only the units of accounts the member may see.
        units = ScanUnit.objects.restrict(self.membership).filter(scan=scan)
        context["failed_units"] = units.filter(status="failed").select_related("account")[:100]
        context["unit_counts"] = {
            status: units.filter(status=status).count()
            for status in ("pending", "running", "succeeded", "failed")
        }
        return context


class ScheduleListView(OrganizationViewMixin, TemplateView):
    """Scan schedules with their next run; owners and admins create, edit and delete them."""

    template_name = "inventory/schedule_list.html"
    write_action = "manage"

    def accounts(self):
        return AwsAccount.objects.restrict(self.membership).order_by("name")

    def get_context_data(self, **kwargs):

        context = super().get_context_data(**kwargs)
        schedules = list(
            ScanSchedule.objects.restrict(self.membership).select_related(
                "account", "periodic_task", "periodic_task__interval", "periodic_task__crontab"
            )
        )
        context["rows"] = [
            (
                s,
                next_run(s),
                ScheduleForm(
                    accounts=self.accounts(),
                    initial={
                        "name": s.name,
                        "account": s.account_id or "",
                        "kind": s.kind,
                        "every_minutes": s.every_minutes,
                        "cron": s.cron,
                        "timezone": s.timezone,
                        "enabled": s.enabled,
                    },
                    prefix=f"s{s.pk}",
                ),
            )
            for s in schedules
        ]
        context["can_manage"] = role_allows(self.membership.role, "manage")
        context["form"] = kwargs.get("form") or ScheduleForm(
            accounts=self.accounts(), initial={"kind": "cron", "cron": "0 3 * * *"}
        )
        return context

    def post(self, request, *args, **kwargs):

        pk = request.POST.get("schedule")
        target = None
        if pk:
            target = ScanSchedule.objects.restrict(self.membership, "manage").filter(pk=pk).first()
            if target is None:
                raise Http404("No such schedule.")
            if request.POST.get("delete"):
                schedules.delete_schedule(target)
                messages.success(request, f"Schedule {target.name} deleted.")
                return redirect(_org_url("schedule-list", self))
        form = ScheduleForm(
            request.POST, accounts=self.accounts(), prefix=f"s{target.pk}" if target else None
        )
        if form.is_valid():
            data = form.cleaned_data
            account = (
                access_account_by_id(self.membership, int(data["account"]))
                if data["account"]
                else None
            )
            fields = dict(
                name=data["name"],
                account=account,
                kind=data["kind"],
                every_minutes=data["every_minutes"],
                cron=data["cron"].strip(),
                tz=data["timezone"].strip(),
                enabled=data["enabled"],
            )
            try:
                if target:
                    schedules.update_schedule(target, **fields)
                else:
                    schedules.create_schedule(self.organization, **fields)
            except schedules.ScheduleError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Schedule {data['name']} saved.")
                return redirect(_org_url("schedule-list", self))
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
        return self.render_to_response(self.get_context_data(form=form if not target else None))


class AccountDiscoverView(OrganizationViewMixin, TemplateView):
    """POST from a management account: preview its AWS Organization, or register the new ones
    (`register=1`)."""

    template_name = "inventory/partials/_discovery.html"
    required_action = "manage"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):

        management = access_account_by_id(self.membership, self.kwargs["pk"], "manage")
        try:
            found = discovery.discover(management)
        except (ClientError, BotoCoreError) as exc:
            return self.render_to_response(self.get_context_data(error=str(exc)))
        created = []
        if request.POST.get("register"):
            role_name = request.POST.get("role_name", "").strip() or discovery.DEFAULT_ROLE_NAME
            created = discovery.register_discovered(management, found, role_name=role_name)
            found = discovery.discover(management)
        return self.render_to_response(
            self.get_context_data(found=found, created=created, account=management)
        )
