"""Policies pages: the rule list (import, export), a rule's editor with live preview and its
versions. Everyone with `view` reads; owners and admins (`manage`) write."""

from __future__ import annotations

from datetime import UTC, datetime, time
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.dateparse import parse_date, parse_datetime
from django.views.generic import TemplateView

from accounts.roles import role_allows
from audit.exports import csv_download, download
from inventory.access import access_resource_by_id, visible_accounts
from tagsense.tenancy.views import OrganizationViewMixin

from . import evaluation, exemptions, services
from .aws import imported
from .aws.documents import TagPolicyError, export_json
from .engine.spec import SpecError, dump_rules
from .models import (
    AwsTagPolicy,
    AwsTagPolicyVersion,
    Control,
    Exemption,
    Finding,
    Framework,
    Rule,
    RuleVersion,
    ScoreSnapshot,
)
from .scoring import charts, scores

NEW_RULE_TEMPLATE = """version: 1
rules:
  - id: owner-required
    title: Every resource names its Owner
    check: required_key
    key: Owner
    severity: medium
    enforcement: report
"""


def _url(view, name: str, **kwargs) -> str:
    return reverse(name, kwargs={"org_slug": view.organization.slug, **kwargs})


class PolicyPageMixin(OrganizationViewMixin):
    write_action = "manage"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_manage"] = role_allows(self.membership.role, "manage")
        return context


class RuleListView(PolicyPageMixin, TemplateView):
    template_name = "policies/rule_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["rules"] = Rule.objects.restrict(self.membership)
        context["import_errors"] = kwargs.get("import_errors")
        context["import_text"] = kwargs.get("import_text", "")
        return context


class RuleImportView(RuleListView):
    """POST a rule file (pasted or uploaded); problems re-render the list with every one."""

    template_name = "policies/rule_list.html"

    def get(self, request, *args, **kwargs):
        return redirect(_url(self, "policies"))

    def post(self, request, *args, **kwargs):
        upload = request.FILES.get("file")
        text = upload.read() if upload else request.POST.get("yaml", "")
        mode = request.POST.get("mode", services.MERGE)
        try:
            result = services.import_rules(self.organization, text, mode)
        except SpecError as exc:
            context = self.get_context_data(
                import_errors=exc.problems,
                import_text=text if isinstance(text, str) else "",
            )
            return self.render_to_response(context, status=400)
        messages.success(
            request,
            f"Imported ({mode}): {len(result['created'])} created, {len(result['updated'])} "
            f"updated, {len(result['deleted'])} deleted.",
        )
        return redirect(_url(self, "policies"))


class RuleExportView(PolicyPageMixin, TemplateView):
    def get(self, request, *args, **kwargs):
        rules = Rule.objects.restrict(self.membership)
        return download(
            "policies.rules",
            content=services.export_rules(rules),
            content_type="application/yaml; charset=utf-8",
            filename="tagsense-rules.yaml",
            rows=rules.count(),
            filters=request.GET,
        )


class AwsTagPolicyExportView(PolicyPageMixin, TemplateView):
    """The active rules as an AWS tag policy (JSON download); the rules left out are named in
    the file's companion header."""

    def get(self, request, *args, **kwargs):

        try:
            document, skipped = imported.export_tag_policy(Rule.objects.restrict(self.membership))
        except TagPolicyError as exc:
            messages.error(request, f"The rules cannot be written as a tag policy: {exc}")
            return redirect(_url(self, "aws-policy-list"))
        response = download(
            "policies.aws.documents",
            content=export_json(document),
            content_type="application/json",
            filename="tagsense-tag-policy.json",
            rows=len(document.get("tags", {})),
            filters=request.GET,
        )
        response["X-TagSense-Skipped-Rules"] = ", ".join(s["rule"] for s in skipped)[:2000]
        return response


class RuleEditView(PolicyPageMixin, TemplateView):
    """The editor: one rule as a rule file (YAML), the active flag, a live preview of what it
    would flag, and (for an existing rule) its versions. New rule when there is no rule_id."""

    template_name = "policies/rule_edit.html"

    def get_required_action(self) -> str:
        if "rule_id" not in self.kwargs:  # the blank editor is for writers only
            return "manage"
        return super().get_required_action()

    def rule(self) -> Rule | None:
        if "rule_id" not in self.kwargs:
            return None
        return get_object_or_404(
            Rule.objects.restrict(self.membership), rule_id=self.kwargs["rule_id"]
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rule = kwargs.get("rule", self.rule())
        context["rule"] = rule
        if "text" in kwargs:
            context["text"] = kwargs["text"]
        else:
            context["text"] = dump_rules([rule.rule_spec]) if rule else NEW_RULE_TEMPLATE
        context["active"] = kwargs.get("active", rule.active if rule else True)
        context["errors"] = kwargs.get("errors")
        if rule is not None:
            context["versions"] = RuleVersion.objects.restrict(self.membership).filter(
                rule_slug=rule.rule_id
            )
        return context

    def post(self, request, *args, **kwargs):
        rule = self.rule()
        text = request.POST.get("yaml", "")
        active = request.POST.get("active") == "on"
        try:
            spec = services.parse_one(text)
            if rule is None:
                rule = services.create_rule(self.organization, spec, active=active)
                messages.success(request, f"Rule {rule.rule_id} created.")
            else:
                rule = services.update_rule(rule, spec, active=active)
                messages.success(request, f"Rule {rule.rule_id} saved (version {rule.version}).")
        except SpecError as exc:
            context = self.get_context_data(
                rule=rule, text=text, active=active, errors=exc.problems
            )
            return self.render_to_response(context, status=400)
        return redirect(_url(self, "rule-edit", rule_id=rule.rule_id))


class RuleDeleteView(PolicyPageMixin, TemplateView):
    http_method_names = ["post"]  # a form's action: a GET is 405, not a page

    def post(self, request, *args, **kwargs):
        rule = get_object_or_404(
            Rule.objects.restrict(self.membership), rule_id=self.kwargs["rule_id"]
        )
        services.delete_rule(rule)
        messages.success(request, f"Rule {rule.rule_id} deleted; its versions are kept.")
        return redirect(_url(self, "policies"))


class RulePreviewView(PolicyPageMixin, TemplateView):
    """The editor's live preview (an HTMX fragment): what the YAML in the editor would flag
    among the live resources the member may see. Nothing is saved."""

    template_name = "policies/partials/_preview.html"

    def get(self, request, *args, **kwargs):
        raise Http404

    def post(self, request, *args, **kwargs):
        context = self.get_context_data()
        try:
            spec = services.parse_one(request.POST.get("yaml", ""))
        except SpecError as exc:
            context["errors"] = exc.problems
        else:
            context["preview"] = services.preview(self.membership, spec)
        return self.render_to_response(context)


FINDING_COLUMNS = ("rule", "severity", "enforcement", "status", "kind", "found_key", "account",
                   "resource_type", "arn", "owner", "owner_teams", "first_seen", "last_seen",
                   "resolved_at", "suggested_fix")  # fmt: skip


class FindingListView(OrganizationViewMixin, TemplateView):
    """Findings of the accounts the member may see: filters, counts per rule, suggested
    fixes, CSV (`?format=csv`). Owners and admins can run a full evaluation."""

    template_name = "policies/finding_list.html"
    FILTERS = (
        "rule",
        "severity",
        "status",
        "account",
        "type",
        "team",
        "key",
        "framework",
        "control",
    )

    def findings(self):
        queryset = Finding.objects.restrict(self.membership).select_related(
            "rule", "resource", "account", "exemption"
        )
        return services.filter_findings(queryset, self.request.GET).order_by("-id")

    def get(self, request, *args, **kwargs):
        if request.GET.get("format") == "csv":
            return self.csv()
        return super().get(request, *args, **kwargs)

    def csv(self):

        rows = [
            [
                f.rule.rule_id,
                f.severity,
                f.enforcement,
                f.current_status,
                f.kind,
                f.found_key or "",
                f.account.account_id,
                f.resource.resource_type,
                f.resource.arn,
                f.owner,
                " ".join(f.owner_teams),
                f.first_seen.isoformat(),
                f.last_seen.isoformat(),
                f.resolved_at.isoformat() if f.resolved_at else "",
                services.fix_for(f),
            ]
            for f in self.findings().iterator(chunk_size=1000)
        ]  # materialised: the rows render inside the tenant transaction
        return csv_download(
            "policies.findings",
            header=FINDING_COLUMNS,
            rows=rows,
            count=len(rows),
            filename="findings.csv",
            filters=self.request.GET,
        )

    def get_context_data(self, **kwargs):

        context = super().get_context_data(**kwargs)
        findings = self.findings()
        page = Paginator(findings, 100).get_page(self.request.GET.get("page"))
        for finding in page.object_list:
            finding.fix = services.fix_for(finding)
        context["page"] = page
        context["filters"] = {name: self.request.GET.get(name, "") for name in self.FILTERS}
        context["per_rule"] = services.counts_per_rule(findings)
        context["rules"] = Rule.objects.restrict(self.membership).values_list("rule_id", flat=True)
        context["can_manage"] = role_allows(self.membership.role, "manage")
        context["can_request"] = role_allows(self.membership.role, "change")
        query = self.request.GET.copy()
        query.pop("page", None)
        context["page_query"] = query.urlencode()
        query["format"] = "csv"
        context["csv_query"] = query.urlencode()
        return context


class ResourceFindingsView(OrganizationViewMixin, TemplateView):
    """One resource's findings (rule, status, since when, exemption, the fix), every status,
    for any member who may see the resource (404 otherwise, like a missing one). The inventory's
    resource page loads the fragment with htmx and links to the whole page without JavaScript:
    inventory never imports policies."""

    template_name = "policies/resource_findings.html"
    partial_template_name = "policies/partials/_resource_findings.html"

    def get_context_data(self, **kwargs):

        context = super().get_context_data(**kwargs)
        resource = access_resource_by_id(self.membership, self.kwargs["pk"])
        findings = sorted(  # by the status as of now (current_status), then the rule
            Finding.objects.restrict(self.membership)
            .filter(resource_id=resource.pk)
            .select_related("rule", "resource", "exemption"),
            key=lambda f: (f.current_status, f.rule.rule_id),
        )
        for finding in findings:
            is_open = finding.current_status == Finding.OPEN
            finding.fix = services.fix_for(finding) if is_open else ""
        context["resource"] = resource
        context["findings"] = findings
        context["open_count"] = sum(f.current_status == Finding.OPEN for f in findings)
        context["can_request"] = role_allows(self.membership.role, "change")
        return context


class EvaluateView(PolicyPageMixin, TemplateView):
    """A full evaluation now (owners and admins); back to the findings."""

    def get(self, request, *args, **kwargs):
        return redirect(_url(self, "findings"))

    def post(self, request, *args, **kwargs):
        force = request.POST.get("force") == "1"
        result = evaluation.evaluate_organization(self.organization, trigger="manual", force=force)
        what = (
            "every rule over every resource"
            if result["mode"] == "full"
            else f"{result['rules_evaluated']} changed rules and "
            f"{result['resources_evaluated']} changed resources"
        )
        messages.success(
            request,
            f"Evaluated {what}: {result['failing']} failing ({result['new']} new), "
            f"{result['resolved']} resolved.",
        )
        return redirect(_url(self, "findings"))


def _parse_expiry(text: str):
    """A date (YYYY-MM-DD, end of that day UTC) or an ISO date-time."""

    text = (text or "").strip()
    moment = parse_datetime(text)
    if moment is not None:
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    day = parse_date(text) if text else None
    if day is None:
        raise exemptions.ExemptionError("give the expiry as a date, YYYY-MM-DD")
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def request_from(membership, data, params) -> Exemption:
    """Request an exemption for the findings named by id (`finding`) or, with
    `scope=filtered`, every open finding matching the filters; only findings the member may
    see are ever included."""
    visible = Finding.objects.restrict(membership)
    if data.get("scope") == "filtered":
        filters = {k: params.get(k) for k in FindingListView.FILTERS if params.get(k)}
        chosen = services.filter_findings(visible, filters)
    else:
        ids = [int(i) for i in data.getlist("finding") if str(i).isdigit()]
        filters = {"findings": ids}
        chosen = visible.filter(pk__in=ids)
    return exemptions.request(
        membership,
        chosen,
        justification=data.get("justification", ""),
        expires_at=_parse_expiry(data.get("expires_at", "")),
        filters=filters,
    )


class ExemptionListView(OrganizationViewMixin, TemplateView):
    """Exemptions (everyone with view); POST requests one (members who may change)."""

    template_name = "policies/exemption_list.html"
    write_action = "change"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["exemptions"] = Exemption.objects.restrict(self.membership)
        context["can_decide"] = role_allows(self.membership.role, "manage")
        return context

    def post(self, request, *args, **kwargs):
        try:
            exemption = request_from(self.membership, request.POST, request.POST)
        except exemptions.ExemptionError as exc:
            messages.error(request, f"No exemption requested: {exc}.")
            return redirect(_url(self, "findings"))
        messages.success(
            request,
            f"Exemption #{exemption.pk} requested for {exemption.finding_count} findings; "
            "an owner or admin other than you approves it.",
        )
        return redirect(_url(self, "exemption-list"))


class ExemptionDecideView(PolicyPageMixin, TemplateView):
    http_method_names = ["post"]  # a form's action: a GET is 405, not a page

    decision = "approve"

    def post(self, request, *args, **kwargs):
        exemption = get_object_or_404(Exemption.objects.restrict(self.membership), pk=kwargs["pk"])
        try:
            if self.decision == "approve":
                count = exemptions.approve(exemption, self.membership)
                messages.success(request, f"Exemption #{exemption.pk} approved: {count} exempted.")
            else:
                exemptions.reject(exemption, self.membership)
                messages.success(request, f"Exemption #{exemption.pk} rejected.")
        except exemptions.ExemptionError as exc:
            messages.error(request, str(exc))
        return redirect(_url(self, "exemption-list"))


# --- AWS tag policies -------------------------------------------------------------------------


def _tag_policy_form(data, files) -> dict:
    """The import/edit form's fields; the document pasted or uploaded (an upload wins)."""
    upload = files.get("file")
    position = (data.get("position") or "").strip()
    return {
        "name": data.get("name", ""),
        "document": upload.read() if upload else data.get("document", ""),
        "target_type": data.get("target_type", AwsTagPolicy.ROOT),
        "target": data.get("target", ""),
        "position": int(position) if position.isdigit() else None,
    }


def _warn_rule_problems(request, problems: list[str]) -> None:
    """Say, next to the success, what of the effective policies TagSense cannot check."""
    if problems:
        messages.warning(
            request,
            "TagSense cannot check part of the effective tag policies (no rule could be "
            "generated): " + "; ".join(problems[:20]) + (" …" if len(problems) > 20 else ""),
        )


class AwsTagPolicyListView(PolicyPageMixin, TemplateView):
    """Imported AWS tag policies and where they are attached (everyone with view); POST
    imports one (owners and admins). A document with problems saves nothing and the page
    lists each problem with its JSON path."""

    template_name = "policies/aws_policy_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["policies"] = AwsTagPolicy.objects.restrict(self.membership)
        # For those who manage policies (the problems name accounts a team member may not see).
        context["rule_problems"] = (
            imported.rule_problems(self.organization) if context.get("can_manage") else []
        )
        context["errors"] = kwargs.get("errors")
        context["error_code"] = kwargs.get("error_code")
        context["error_reason"] = kwargs.get("error_reason")
        context["form"] = kwargs.get("form", {"target_type": AwsTagPolicy.ROOT})
        context["targets"] = AwsTagPolicy.TARGETS
        return context

    def post(self, request, *args, **kwargs):
        form = _tag_policy_form(request.POST, request.FILES)
        try:
            policy = imported.import_tag_policy(self.organization, **form)
        except TagPolicyError as exc:
            if isinstance(form["document"], bytes):
                form["document"] = form["document"].decode("utf-8", "replace")
            context = self.get_context_data(
                errors=exc.problems, error_code=exc.code, error_reason=exc.reason, form=form
            )
            return self.render_to_response(context, status=400)
        messages.success(request, f"AWS tag policy {policy.name} imported ({policy.target_label}).")
        _warn_rule_problems(request, policy.rule_problems)
        return redirect(_url(self, "aws-policy-list"))


class AwsTagPolicyDetailView(PolicyPageMixin, TemplateView):
    """One imported policy: its document, target and versions; POST saves a new version."""

    template_name = "policies/aws_policy_detail.html"

    def policy(self) -> AwsTagPolicy:
        return get_object_or_404(
            AwsTagPolicy.objects.restrict(self.membership), pk=self.kwargs["pk"]
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        policy = kwargs.get("policy") or self.policy()
        context["policy"] = policy
        context["form"] = kwargs.get(
            "form",
            {
                "name": policy.name,
                "document": policy.document,
                "target_type": policy.target_type,
                "target": policy.target,
                "position": policy.position,
            },
        )
        context["errors"] = kwargs.get("errors")
        context["error_code"] = kwargs.get("error_code")
        context["error_reason"] = kwargs.get("error_reason")
        context["targets"] = AwsTagPolicy.TARGETS
        context["versions"] = AwsTagPolicyVersion.objects.restrict(self.membership).filter(
            policy=policy
        )
        return context

    def post(self, request, *args, **kwargs):
        policy = self.policy()
        form = _tag_policy_form(request.POST, request.FILES)
        try:
            policy = imported.update_tag_policy(policy, **form)
        except TagPolicyError as exc:
            if isinstance(form["document"], bytes):
                form["document"] = form["document"].decode("utf-8", "replace")
            context = self.get_context_data(
                policy=policy,
                errors=exc.problems,
                error_code=exc.code,
                error_reason=exc.reason,
                form=form,
            )
            return self.render_to_response(context, status=400)
        messages.success(request, f"AWS tag policy {policy.name} saved (version {policy.version}).")
        _warn_rule_problems(request, policy.rule_problems)
        return redirect(_url(self, "aws-policy-detail", pk=policy.pk))


class AwsTagPolicyDeleteView(PolicyPageMixin, TemplateView):
    http_method_names = ["post"]  # a form's action: a GET is 405, not a page

    def post(self, request, *args, **kwargs):
        policy = get_object_or_404(AwsTagPolicy.objects.restrict(self.membership), pk=kwargs["pk"])
        imported.delete_tag_policy(policy)
        messages.success(request, f"AWS tag policy {policy.name} deleted; its versions are kept.")
        return redirect(_url(self, "aws-policy-list"))


class AwsEffectivePolicyView(PolicyPageMixin, TemplateView):
    """Each AWS account the member may see with its effective tag policy (as AWS displays
    it), the policies it comes from, the operators ignored and why, and its open findings
    from the generated rules."""

    template_name = "policies/aws_effective.html"

    def get_context_data(self, **kwargs):

        context = super().get_context_data(**kwargs)
        accounts = visible_accounts(self.membership)
        if "account_id" in self.kwargs:
            accounts = accounts.filter(account_id=self.kwargs["account_id"])
            if not accounts.exists():
                raise Http404("No such account.")
        items = imported.account_policies(self.organization, accounts)
        open_counts = dict(
            Finding.objects.restrict(self.membership)
            .open()
            .filter(rule__origin=Rule.AWS_TAG_POLICY)
            .order_by()
            .values_list("account__account_id")
            .annotate(n=Count("id"))
        )
        for item in items:
            item.open_findings = open_counts.get(item.account.account_id, 0)
        context["items"] = items
        context["single"] = "account_id" in self.kwargs
        return context


# Frameworks and scores ------------------------------------------------------------------------


def framework_cards(membership, frameworks, card, days: int = 90) -> list[dict]:
    """Each framework with its score over the member's accounts, its trend chart and its
    controls' pass/fail (policies.scoring.scores)."""

    cards = []
    for framework in frameworks:
        trend = scores.trend(membership, ScoreSnapshot.FRAMEWORK, framework.slug, days)
        controls = []
        for control in framework.controls.all():
            score = card.controls.get(scores.control_key(framework.slug, control.control_id))
            score = score or scores.EMPTY
            status = scores.control_status(control, score, card.rules_by_id)
            controls.append({"control": control, "score": score, "status": status})
        cards.append(
            {
                "framework": framework,
                "score": card.frameworks.get(framework.slug, scores.EMPTY),
                "controls": controls,
                "failing": sum(c["status"] == "fail" for c in controls),
                "chart": charts.snapshot_chart(trend, label=framework.name, days=days),
            }
        )
    return cards


class FrameworkListView(PolicyPageMixin, TemplateView):
    """Frameworks: the organization's (scorecards with score, trend, per-control pass/fail)
    and the built-in ones it has not enabled. Owners and admins enable built-ins and create
    custom frameworks."""

    template_name = "policies/framework_list.html"

    def get_context_data(self, **kwargs):

        context = super().get_context_data(**kwargs)
        frameworks = list(Framework.objects.restrict(self.membership).prefetch_related("controls"))
        card = scores.scorecard(self.organization, scores.account_scope(self.membership))
        context["cards"] = framework_cards(self.membership, frameworks, card)
        enabled = {f.slug for f in frameworks}
        context["available"] = [
            f for key, f in sorted(services.builtin_library().items()) if key not in enabled
        ]
        context["overall"] = card.organization
        context["cost_period"] = card.period
        context["create_errors"] = kwargs.get("create_errors")
        context["create_form"] = kwargs.get("create_form", {})
        return context


class FrameworkEnableView(PolicyPageMixin, TemplateView):
    http_method_names = ["post"]  # a form's action: a GET is 405, not a page

    def post(self, request, *args, **kwargs):
        key = request.POST.get("framework", "")
        if key not in services.builtin_library():
            raise Http404
        try:
            framework = services.enable_framework(self.organization, key)
        except SpecError as exc:
            messages.error(request, "; ".join(p.message for p in exc.problems))
            return redirect(_url(self, "framework-list"))
        messages.success(request, f"{framework.name} enabled; its rules are installed.")
        return redirect(_url(self, "framework-detail", slug=framework.slug))


class FrameworkCreateView(FrameworkListView):
    def get(self, request, *args, **kwargs):
        return redirect(_url(self, "framework-list"))

    def post(self, request, *args, **kwargs):
        name, controls = request.POST.get("name", ""), request.POST.get("controls", "")
        try:
            framework = services.create_framework(self.organization, name, controls)
        except SpecError as exc:
            context = self.get_context_data(
                create_errors=exc.problems, create_form={"name": name, "controls": controls}
            )
            return self.render_to_response(context, status=400)
        messages.success(request, f"Framework {framework.name} created.")
        return redirect(_url(self, "framework-detail", slug=framework.slug))


class FrameworkDetailView(PolicyPageMixin, TemplateView):
    """One framework: its controls with pass/fail, their rules, and the resources failing them
    among the accounts the member may see."""

    template_name = "policies/framework_detail.html"
    # The first failing findings of each control; the rest are one link away, in the findings
    # list filtered to the control (a control can fail thousands of resources).
    FINDINGS_SHOWN = 20

    def framework(self):

        return get_object_or_404(
            Framework.objects.restrict(self.membership).prefetch_related("controls"),
            slug=self.kwargs["slug"],
        )

    def get_context_data(self, **kwargs):

        context = super().get_context_data(**kwargs)
        framework = self.framework()
        card = scores.scorecard(self.organization, scores.account_scope(self.membership))
        [info] = framework_cards(self.membership, [framework], card)
        for row in info["controls"]:
            control = row["control"]
            row["rules"] = [(r, card.rules_by_id.get(r)) for r in control.rule_ids]
            row["findings"], row["findings_total"] = [], 0
            if row["status"] == "fail":
                failing = scores.failing_findings(self.membership, control)
                row["findings"] = list(failing[: self.FINDINGS_SHOWN])
                row["findings_total"] = (
                    len(row["findings"])
                    if len(row["findings"]) < self.FINDINGS_SHOWN
                    else failing.count()
                )
                row["findings_query"] = urlencode(
                    {"framework": framework.slug, "control": control.control_id, "status": "open"}
                )
        context["info"] = info
        context["framework"] = framework
        context["cost_period"] = card.period
        context["charts"] = {
            days: charts.snapshot_chart(
                scores.trend(self.membership, ScoreSnapshot.FRAMEWORK, framework.slug, days),
                label=framework.name,
                days=days,
                width=480,
                height=120,
            )
            for days in scores.TREND_DAYS
        }
        context["rule_ids"] = sorted(card.rules_by_id)
        context["errors"] = kwargs.get("errors")
        return context


class ControlRulesView(FrameworkDetailView):
    """POST the rules (ids, space or comma separated) that evidence a control."""

    def get(self, request, *args, **kwargs):
        return redirect(_url(self, "framework-detail", slug=kwargs["slug"]))

    def post(self, request, *args, **kwargs):

        control = get_object_or_404(
            Control.objects.restrict(self.membership).select_related("framework"),
            framework__slug=kwargs["slug"],
            pk=kwargs["pk"],
        )
        rules = request.POST.get("rules", "").replace(",", " ").split()
        try:
            services.map_control_rules(control, rules)
        except SpecError as exc:
            return self.render_to_response(self.get_context_data(errors=exc.problems), status=400)
        messages.success(request, f"Rules of {control.control_id} saved.")
        return redirect(_url(self, "framework-detail", slug=kwargs["slug"]))


class FrameworkDeleteView(FrameworkDetailView):
    def post(self, request, *args, **kwargs):
        framework = self.framework()
        services.delete_framework(framework)
        messages.success(request, f"{framework.name} removed; its rules are kept.")
        return redirect(_url(self, "framework-list"))
