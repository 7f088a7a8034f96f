"""Frameworks, controls, scores and trends API. Reads need `view` and are computed over the
accounts the caller may see; writes (enable, create, map rules, remove) need `manage`."""

from __future__ import annotations

from decimal import Decimal

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from policies import services
from policies.engine.spec import SpecError
from policies.models import Control, Framework, ScoreSnapshot
from policies.scoring import scores
from tagsense.tenancy.api import OrganizationAPIView

from .serializers import (
    BuiltinFrameworkSerializer,
    ControlDetailSerializer,
    ControlRulesSerializer,
    DimensionScoresSerializer,
    FrameworkCreateSerializer,
    FrameworkEnableSerializer,
    FrameworkSerializer,
    ScoresSerializer,
    TrendSerializer,
)
from .views import SPEC_PROBLEM, spec_problem  # noqa: I001

CENTS = Decimal("0.01")


def _spend(spend: scores.Spend | None) -> dict | None:
    if spend is None:
        return None
    return {
        "in_scope": str(spend.in_scope.quantize(CENTS)),
        "compliant": str(spend.compliant.quantize(CENTS)),
        "failing": str(spend.failing.quantize(CENTS)),
        "score": spend.percent,
        "resources_with_cost": spend.costed,
    }


def _score(score: scores.Score) -> dict:
    return {
        "in_scope": score.in_scope,
        "compliant": score.compliant,
        "score": score.percent,
        "spend": _spend(score.spend),
    }


def _period(period) -> dict | None:
    if period is None:
        return None
    return {
        "start": period.start,
        "end": period.end,
        "days": period.days,
        "currency": period.currency,
        "sources": list(period.sources),
    }


def _control(control: Control, card: scores.Scorecard, slug: str) -> dict:
    score = card.controls.get(scores.control_key(slug, control.control_id), scores.EMPTY)
    return {
        "id": control.pk,
        "control_id": control.control_id,
        "title": control.title,
        "rules": list(control.rule_ids),
        "status": scores.control_status(control, score, card.rules_by_id),
        **_score(score),
    }


def _framework(framework: Framework, card: scores.Scorecard) -> dict:
    return {
        "slug": framework.slug,
        "name": framework.name,
        "version": framework.version,
        "source": framework.source,
        "builtin": framework.builtin,
        **_score(card.frameworks.get(framework.slug, scores.EMPTY)),
        "controls": [_control(c, card, framework.slug) for c in framework.controls.all()],
    }


class FrameworkBase(OrganizationAPIView):
    model = Framework
    serializer_class = FrameworkSerializer
    write_action = "manage"
    pagination_class = None  # the lists here are short and answered whole

    def card(self) -> scores.Scorecard:
        return scores.scorecard(self.organization, scores.account_scope(self.membership))

    def framework(self) -> Framework:
        return get_object_or_404(
            self.get_queryset().prefetch_related("controls"), slug=self.kwargs["slug"]
        )


class FrameworkListView(FrameworkBase):
    """The organization's frameworks with their scores and controls. POST creates a custom
    framework."""

    @extend_schema(responses={200: FrameworkSerializer(many=True)})
    def get(self, request, *args, **kwargs):
        card = self.card()
        frameworks = self.get_queryset().prefetch_related("controls")
        return Response([_framework(f, card) for f in frameworks])

    @extend_schema(
        request=FrameworkCreateSerializer, responses={201: FrameworkSerializer, 400: SPEC_PROBLEM}
    )
    def post(self, request, *args, **kwargs):
        body = FrameworkCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        lines = []
        for c in body.validated_data["controls"]:
            rules = c.get("rules") or []
            parts = [str(c.get("id", "")), str(c.get("title", ""))]
            lines.append(" | ".join([*(p.replace("|", "/") for p in parts), " ".join(rules)]))
        try:
            framework = services.create_framework(
                self.organization, body.validated_data["name"], "\n".join(lines)
            )
        except SpecError as exc:
            return spec_problem(exc)
        framework = self.get_queryset().prefetch_related("controls").get(pk=framework.pk)
        return Response(_framework(framework, self.card()), status=201)


class BuiltinFrameworkListView(FrameworkBase):
    """The built-in frameworks every organization may enable, and whether this one has."""

    @extend_schema(responses={200: BuiltinFrameworkSerializer(many=True)})
    def get(self, request, *args, **kwargs):
        enabled = set(self.get_queryset().filter(builtin=True).values_list("slug", flat=True))
        return Response(
            [
                {
                    "id": f.id,
                    "name": f.name,
                    "version": f.version,
                    "source": f.source,
                    "controls": len(f.controls),
                    "enabled": f.id in enabled,
                }  # fmt: skip
                for f in services.builtin_library().values()
            ]
        )


class FrameworkEnableView(FrameworkBase):
    """Enable a built-in framework: its controls, and its rules the organization lacks."""

    @extend_schema(request=FrameworkEnableSerializer, responses={200: FrameworkSerializer})
    def post(self, request, *args, **kwargs):
        body = FrameworkEnableSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data["framework"] not in services.builtin_library():
            raise NotFound("No such built-in framework.")
        try:
            framework = services.enable_framework(
                self.organization, body.validated_data["framework"]
            )
        except SpecError as exc:
            return spec_problem(exc)
        framework = self.get_queryset().prefetch_related("controls").get(pk=framework.pk)
        return Response(_framework(framework, self.card()))


class FrameworkDetailView(FrameworkBase):
    """One framework with its score and its controls' pass/fail. DELETE removes it (its rules
    and findings stay)."""

    def get(self, request, *args, **kwargs):
        return Response(_framework(self.framework(), self.card()))

    @extend_schema(responses={204: None})
    def delete(self, request, *args, **kwargs):
        services.delete_framework(self.framework())
        return Response(status=204)


class ControlDetailView(FrameworkBase):
    """One control: pass/fail, its rules and the resources failing them (accounts the caller
    may see). PUT sets its rules."""

    serializer_class = ControlDetailSerializer

    def control(self) -> Control:
        return get_object_or_404(
            Control.objects.restrict(self.membership).select_related("framework"),
            framework__slug=self.kwargs["slug"],
            pk=self.kwargs["pk"],
        )

    def detail(self, control: Control) -> dict:
        data = _control(control, self.card(), control.framework.slug)
        data["failing_resources"] = [
            {
                "resource": f.resource_id,
                "arn": f.resource.arn,
                "resource_type": f.resource.resource_type,
                "account": f.account.account_id,
                "rule": f.rule.rule_id,
                "kind": f.kind,
            }  # fmt: skip
            for f in scores.failing_findings(self.membership, control)[:1000]
        ]
        return data

    def get(self, request, *args, **kwargs):
        return Response(self.detail(self.control()))

    @extend_schema(
        request=ControlRulesSerializer, responses={200: ControlDetailSerializer, 400: SPEC_PROBLEM}
    )
    def put(self, request, *args, **kwargs):
        control = self.control()
        body = ControlRulesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            control = services.map_control_rules(control, body.validated_data["rules"])
        except SpecError as exc:
            return spec_problem(exc)
        return Response(self.detail(control))


class ScoresView(FrameworkBase):
    """Compliance scores over the accounts the caller may see: the organization's, each
    framework's and control's; with `?by=team|account|resource_type`, one row per team slug,
    account id or resource type instead. When those accounts have cost data, every score has
    its `spend` (the same resources weighted by their cost over `spend_period`)."""

    @extend_schema(
        parameters=[OpenApiParameter("by", OpenApiTypes.STR, enum=list(scores.DIMENSIONS))],
        responses={
            200: PolymorphicProxySerializer(
                "ScoresOrDimension",
                serializers=[ScoresSerializer, DimensionScoresSerializer],
                resource_type_field_name=None,
                many=False,
            )
        },
    )
    def get(self, request, *args, **kwargs):
        by = request.query_params.get("by")
        account_pks = scores.account_scope(self.membership)
        if by:
            if by not in scores.DIMENSIONS:
                raise NotFound("by is one of team, account, resource_type.")
            rows = scores.dimension(self.organization, by, account_pks)
            body = DimensionScoresSerializer(
                {
                    "by": by,
                    "rows": [{"key": k, **_score(s)} for k, s in rows.items()],
                    "spend_period": _period(scores.cost_period(self.organization, account_pks)),
                }
            )
            return Response(body.data)
        card = self.card()
        frameworks = self.get_queryset().prefetch_related("controls")
        return Response(
            {
                "organization": _score(card.organization),
                "frameworks": [_framework(f, card) for f in frameworks],
                "spend_period": _period(card.period),
            }
        )


class TrendView(OrganizationAPIView):
    """The daily snapshots of one scope over the last 30 or 90 days: `kind` organization (no
    key), framework (slug), control (<framework>/<control id>), team (slug) or account (id).
    Editors and viewers limited to their teams read their teams' and accounts' rows only."""

    model = ScoreSnapshot
    serializer_class = TrendSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=[k for k, _ in ScoreSnapshot.KINDS]),
            OpenApiParameter("key", OpenApiTypes.STR),
            OpenApiParameter("days", OpenApiTypes.INT, enum=list(scores.TREND_DAYS)),
        ],
        responses={200: TrendSerializer},
    )
    def get(self, request, *args, **kwargs):
        kind = request.query_params.get("kind", ScoreSnapshot.ORGANIZATION)
        key = request.query_params.get("key", scores.ORG_KEY)
        days = request.query_params.get("days", "30")
        if kind not in dict(ScoreSnapshot.KINDS) or days not in ("30", "90"):
            raise NotFound("kind or days not known.")
        points = scores.trend(self.membership, kind, key, int(days))
        return Response(
            TrendSerializer(
                {
                    "kind": kind,
                    "key": key,
                    "days": int(days),
                    "points": [
                        {
                            "day": p.day,
                            "in_scope": p.in_scope,
                            "compliant": p.compliant,
                            "score": p.score,
                            "source": p.source,
                        }
                        for p in points
                    ],
                }  # fmt: skip
            ).data
        )
