"""Policies API: rules (list, create, read, update, delete, versions), import and export of rule
files, and the live preview. Reads need `view`; writes `manage` (owners and admins). A rule
file or rule with problems answers 400 problem+json whose `errors` name each problem's place
and line, and nothing is saved."""

from __future__ import annotations

import json

from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from audit.exports import download, record_export
from inventory.access import visible_accounts
from inventory.models import AwsAccount
from policies import evaluation, exemptions, services
from policies.aws import imported
from policies.aws.documents import TagPolicyError
from policies.engine.spec import RuleSpec, SpecError, SpecProblem
from policies.models import AwsTagPolicy, Exemption, Finding, Rule, RuleVersion
from tagsense.api import PROBLEM_CONTENT_TYPE, problem
from tagsense.tenancy.api import OrganizationAPIView

from .serializers import (
    AwsEffectivePolicySerializer,
    AwsTagPolicySerializer,
    AwsTagPolicyWriteSerializer,
    EvaluateResultSerializer,
    ExemptionRequestSerializer,
    ExemptionSerializer,
    FindingCountSerializer,
    FindingSerializer,
    ImportResultSerializer,
    ImportSerializer,
    PreviewSerializer,
    RuleSerializer,
    RuleVersionSerializer,
    RuleWriteSerializer,
)

SPEC_PROBLEM = OpenApiResponse(description="problem+json with errors [{where, message, line}]")


def spec_problem(exc: SpecError) -> Response:
    """400 naming every problem; the tenant transaction is rolled back (nothing saved)."""
    transaction.set_rollback(True)
    body = problem(400, "The rule file has problems.", errors=exc.as_dicts())
    response = Response(body, status=400)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def spec_of(data: dict) -> RuleSpec:
    """The one rule of a write body: `yaml` (a rule file of one rule) or `spec` (its mapping)."""
    if data.get("yaml") is not None:
        return services.parse_one(data["yaml"])
    if data.get("spec") is not None:
        return services.parse_one(json.dumps({"version": 1, "rules": [data["spec"]]}))
    raise SpecError(
        [SpecProblem("body", "give the rule as spec (a mapping) or yaml (a rule file)")]
    )


class RuleListView(mixins.ListModelMixin, OrganizationAPIView):
    """The organization's rules. POST creates one (owners and admins)."""

    serializer_class = RuleSerializer
    model = Rule
    write_action = "manage"

    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(request=RuleWriteSerializer, responses={201: RuleSerializer, 400: SPEC_PROBLEM})
    def post(self, request, *args, **kwargs):
        body = RuleWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            rule = services.create_rule(
                self.organization,
                spec_of(body.validated_data),
                active=body.validated_data.get("active", True),
            )
        except SpecError as exc:
            return spec_problem(exc)
        return Response(RuleSerializer(rule).data, status=201)


class RuleDetailView(OrganizationAPIView):
    """One rule by its id. PUT replaces its spec and/or active flag (a new version); DELETE
    removes it and its findings (its versions stay)."""

    serializer_class = RuleSerializer
    model = Rule
    write_action = "manage"

    def get_object(self) -> Rule:
        return get_object_or_404(self.get_queryset(), rule_id=self.kwargs["rule_id"])

    def get(self, request, *args, **kwargs):
        return Response(RuleSerializer(self.get_object()).data)

    @extend_schema(request=RuleWriteSerializer, responses={200: RuleSerializer, 400: SPEC_PROBLEM})
    def put(self, request, *args, **kwargs):
        rule = self.get_object()
        body = RuleWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            spec = spec_of(data) if ("yaml" in data or "spec" in data) else None
            rule = services.update_rule(rule, spec, active=data.get("active"))
        except SpecError as exc:
            return spec_problem(exc)
        return Response(RuleSerializer(rule).data)

    @extend_schema(responses={204: None})
    def delete(self, request, *args, **kwargs):
        services.delete_rule(self.get_object())
        return Response(status=204)


class RuleVersionListView(mixins.ListModelMixin, OrganizationAPIView):
    """Every version of a rule, newest first (also those of a deleted rule with this id)."""

    serializer_class = RuleVersionSerializer
    model = RuleVersion

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        versions = queryset.filter(rule_slug=self.kwargs["rule_id"]).order_by("-version", "-id")
        return versions

    def get(self, request, *args, **kwargs):
        if not self.get_queryset().exists():
            raise Http404("No such rule.")
        return self.list(request, *args, **kwargs)


class RuleImportView(OrganizationAPIView):
    """Import a rule file: `merge` (default) creates and updates the file's rules and leaves
    the others; `replace` also deletes the rules the file does not hold."""

    serializer_class = ImportSerializer
    model = Rule
    write_action = "manage"

    @extend_schema(
        request=ImportSerializer, responses={200: ImportResultSerializer, 400: SPEC_PROBLEM}
    )
    def post(self, request, *args, **kwargs):
        body = ImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = services.import_rules(
                self.organization, body.validated_data["yaml"], body.validated_data["mode"]
            )
        except SpecError as exc:
            return spec_problem(exc)
        return Response(result)


class RuleExportView(OrganizationAPIView):
    """Every rule of the organization as one rule file (YAML); `?active=1` only active ones."""

    model = Rule
    serializer_class = RuleSerializer

    @extend_schema(
        responses={
            (200, "application/yaml"): inline_serializer(
                "RuleFile",
                {
                    "version": serializers.IntegerField(),
                    "rules": serializers.ListField(child=serializers.DictField()),
                },
            )
        }
    )
    def get(self, request, *args, **kwargs):
        rules = self.get_queryset()
        if request.query_params.get("active") in ("1", "true"):
            rules = rules.filter(active=True)
        return download(
            "policies.rules",
            content=services.export_rules(rules),
            content_type="application/yaml",
            filename="tagsense-rules.yaml",
            rows=rules.count(),
            filters=request.query_params,
        )


class RulePreviewView(OrganizationAPIView):
    """What a rule would flag now among the live resources the caller may see (count and up
    to 20), without saving it."""

    serializer_class = RuleWriteSerializer
    model = Rule
    write_action = "manage"

    @extend_schema(
        request=RuleWriteSerializer, responses={200: PreviewSerializer, 400: SPEC_PROBLEM}
    )
    def post(self, request, *args, **kwargs):
        body = RuleWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            spec = spec_of(body.validated_data)
        except SpecError as exc:
            return spec_problem(exc)
        return Response(PreviewSerializer(services.preview(self.membership, spec)).data)


FINDING_FILTERS = [
    OpenApiParameter(name, OpenApiTypes.STR, description=text)
    for name, text in (
        ("rule", "rule id"),
        ("severity", "high, medium or low"),
        ("status", "open, resolved or exempted"),
        ("account", "12-digit AWS account id"),
        ("type", "resource type"),
        ("team", "slug of a team holding the account"),
        ("key", "the rule's tag key or the key found"),
        ("framework", "framework slug; with control, the findings of that control's rules"),
        ("control", "control id within the framework named by framework"),
    )
]


class FindingListView(mixins.ListModelMixin, OrganizationAPIView):
    """Findings of the accounts the caller may see (team scoping), newest first."""

    serializer_class = FindingSerializer
    model = Finding

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        queryset = queryset.select_related("rule", "resource", "account", "exemption")
        queryset = queryset.order_by("-id")
        return services.filter_findings(queryset, self.request.query_params)

    @extend_schema(parameters=FINDING_FILTERS)
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


class EvaluateView(OrganizationAPIView):
    """Bring the organization's findings up to date now (owners and admins): what changed since
    the last run, or everything with `?force=true`."""

    serializer_class = EvaluateResultSerializer
    model = Finding
    write_action = "manage"

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter(
                "force",
                OpenApiTypes.BOOL,
                description="evaluate every rule over every resource, changed or not",
            )
        ],
        responses={200: EvaluateResultSerializer},
    )
    def post(self, request, *args, **kwargs):
        force = request.query_params.get("force", "").lower() in ("1", "true", "yes")
        return Response(
            evaluation.evaluate_organization(self.organization, trigger="api", force=force)
        )


class ExemptionListView(mixins.ListModelMixin, OrganizationAPIView):
    """Exemptions, newest first. POST requests one (members who may change)."""

    serializer_class = ExemptionSerializer
    model = Exemption
    write_action = "change"

    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(request=ExemptionRequestSerializer, responses={201: ExemptionSerializer})
    def post(self, request, *args, **kwargs):
        body = ExemptionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        visible = Finding.objects.restrict(self.membership)
        if "filters" in data:
            chosen, filters = services.filter_findings(visible, data["filters"]), data["filters"]
        else:
            ids = data.get("findings", [])
            chosen, filters = visible.filter(pk__in=ids), {"findings": ids}
        try:
            exemption = exemptions.request(
                self.membership,
                chosen,
                justification=data["justification"],
                expires_at=data["expires_at"],
                filters=filters,
            )
        except exemptions.ExemptionError as exc:
            raise ValidationError({"exemption": [str(exc)]}) from exc
        return Response(ExemptionSerializer(exemption).data, status=201)


class ExemptionDecideView(OrganizationAPIView):
    """Approve or reject a pending exemption (owners and admins other than the requester)."""

    serializer_class = ExemptionSerializer
    model = Exemption
    write_action = "manage"
    decision = "approve"

    @extend_schema(request=None, responses={200: ExemptionSerializer})
    def post(self, request, *args, **kwargs):
        exemption = get_object_or_404(self.get_queryset(), pk=kwargs["pk"])
        try:
            if self.decision == "approve":
                exemptions.approve(exemption, self.membership)
            else:
                exemptions.reject(exemption, self.membership)
        except exemptions.ExemptionError as exc:
            raise ValidationError({"exemption": [str(exc)]}) from exc
        exemption.refresh_from_db()
        return Response(ExemptionSerializer(exemption).data)


class FindingCountsView(OrganizationAPIView):
    """Findings per rule and status among those the caller may see (same filters as the
    list)."""

    serializer_class = FindingCountSerializer
    model = Finding
    pagination_class = None  # one row per rule: a plain list

    @extend_schema(parameters=FINDING_FILTERS, responses={200: FindingCountSerializer(many=True)})
    def get(self, request, *args, **kwargs):
        findings = services.filter_findings(self.get_queryset(), request.query_params)
        return Response(services.counts_per_rule(findings))


# --- AWS tag policies -------------------------------------------------------------------------

TAG_POLICY_PROBLEM = OpenApiResponse(
    description="problem+json with `code` (the error AWS Organizations answers the same request "
    "with: MalformedPolicyDocumentException, ConstraintViolationException with its `reason`, "
    "InvalidInputException, DuplicatePolicyException) and errors [{path, message}]: each JSON "
    "path of the document"
)


def tag_policy_problem(exc: TagPolicyError) -> Response:
    """400 with AWS's error name, naming every problem with its JSON path; the tenant
    transaction is rolled back."""
    transaction.set_rollback(True)
    extra = {"code": exc.code, "errors": [p.as_dict() for p in exc.problems]}
    if exc.reason:
        extra["reason"] = exc.reason
    body = problem(400, "The AWS tag policy has problems.", **extra)
    response = Response(body, status=400)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _document_of(data: dict):
    """The document as text: a JSON string is taken as the policy text, an object is encoded
    (duplicate keys cannot be detected in an already decoded object)."""
    document = data.get("document")
    if document is None or isinstance(document, str):
        return document
    return json.dumps(document)


def _with_rule_problems(policy: AwsTagPolicy) -> dict:
    """The policy as the API shows it, with `rule_problems`: what of the effective policies
    TagSense could not turn into rules (empty when everything is checked)."""
    return {**AwsTagPolicySerializer(policy).data, "rule_problems": policy.rule_problems}


class AwsTagPolicyExportView(OrganizationAPIView):
    """The organization's active rules written as one AWS Organizations tag policy, with the
    rules a tag policy cannot express and why (docs/aws-tag-policies.md)."""

    model = Rule

    @extend_schema(
        responses={
            200: inline_serializer(
                "AwsTagPolicyExport",
                {
                    "policy": serializers.DictField(help_text="the tag policy document"),
                    "skipped": serializers.ListField(
                        child=inline_serializer(
                            "AwsTagPolicySkippedRule",
                            {"rule": serializers.CharField(), "reason": serializers.CharField()},
                        ),
                        help_text="the rules a tag policy cannot express, and why",
                    ),
                },
            ),
            400: TAG_POLICY_PROBLEM,
        }
    )
    def get(self, request, *args, **kwargs):
        try:
            document, skipped = imported.export_tag_policy(self.get_queryset())
        except TagPolicyError as exc:
            return tag_policy_problem(exc)
        record_export(
            "policies.aws.documents",
            file_format="json",
            rows=len(document.get("tags", {})),
            filters=request.query_params,
        )
        return Response({"policy": document, "skipped": skipped})


class AwsTagPolicyListView(mixins.ListModelMixin, OrganizationAPIView):
    """Imported AWS tag policies. POST imports one and attaches it to the root, an OU path or
    an account (owners and admins); the generated rules are updated at once."""

    serializer_class = AwsTagPolicySerializer
    model = AwsTagPolicy
    write_action = "manage"

    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        request=AwsTagPolicyWriteSerializer,
        responses={201: AwsTagPolicySerializer, 400: TAG_POLICY_PROBLEM},
    )
    def post(self, request, *args, **kwargs):
        body = AwsTagPolicyWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            policy = imported.import_tag_policy(
                self.organization,
                name=data.get("name", ""),
                document=_document_of(data) or "",
                target_type=data.get("target_type", "root"),
                target=data.get("target", ""),
                position=data.get("position"),
            )
        except TagPolicyError as exc:
            return tag_policy_problem(exc)
        return Response(_with_rule_problems(policy), status=201)


class AwsTagPolicyDetailView(OrganizationAPIView):
    """One imported policy. PUT changes any of its fields (a new version); DELETE detaches it."""

    serializer_class = AwsTagPolicySerializer
    model = AwsTagPolicy
    write_action = "manage"

    def get_object(self) -> AwsTagPolicy:
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def get(self, request, *args, **kwargs):
        return Response(AwsTagPolicySerializer(self.get_object()).data)

    @extend_schema(
        request=AwsTagPolicyWriteSerializer,
        responses={200: AwsTagPolicySerializer, 400: TAG_POLICY_PROBLEM},
    )
    def put(self, request, *args, **kwargs):
        policy = self.get_object()
        body = AwsTagPolicyWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            policy = imported.update_tag_policy(
                policy,
                name=data.get("name"),
                document=_document_of(data),
                target_type=data.get("target_type"),
                target=data.get("target"),
                position=data.get("position"),
            )
        except TagPolicyError as exc:
            return tag_policy_problem(exc)
        return Response(_with_rule_problems(policy))

    @extend_schema(responses={204: None})
    def delete(self, request, *args, **kwargs):
        imported.delete_tag_policy(self.get_object())
        return Response(status=204)


class AwsEffectivePolicyListView(OrganizationAPIView):
    """The effective AWS tag policy of each account the caller may see: the levels it comes
    from, the policy as AWS displays it, and the operators ignored with the reason."""

    serializer_class = AwsEffectivePolicySerializer
    model = AwsAccount
    pagination_class = None  # one item per visible account: a plain list

    @extend_schema(
        operation_id="aws_effective_policies_list",
        responses={200: AwsEffectivePolicySerializer(many=True)},
    )
    def get(self, request, *args, **kwargs):
        items = imported.account_policies(self.organization, visible_accounts(self.membership))
        return Response(AwsEffectivePolicySerializer(items, many=True).data)


class AwsEffectivePolicyDetailView(OrganizationAPIView):
    """The effective AWS tag policy of one account (by its 12-digit id) the caller may see."""

    serializer_class = AwsEffectivePolicySerializer
    model = AwsAccount

    @extend_schema(
        operation_id="aws_effective_policy_retrieve",
        responses={
            200: AwsEffectivePolicySerializer,
            404: OpenApiResponse(
                description="problem+json: no such account, or (with `code` "
                "EffectivePolicyNotFoundException, as AWS answers) no tag policy applies to it"
            ),
        },
    )
    def get(self, request, *args, **kwargs):
        accounts = visible_accounts(self.membership).filter(account_id=kwargs["account_id"])
        if not accounts.exists():
            raise Http404("No such account.")
        [item] = imported.account_policies(self.organization, accounts)
        if not item.found:
            body = problem(
                404,
                f"No tag policy is attached to the root, to an OU on the path of account "
                f"{item.account.account_id} or to the account: it has no effective tag policy.",
                code=imported.EFFECTIVE_NOT_FOUND,
                account_id=item.account.account_id,
            )
            response = Response(body, status=404)
            response.content_type = PROBLEM_CONTENT_TYPE
            return response
        return Response(AwsEffectivePolicySerializer(item).data)
