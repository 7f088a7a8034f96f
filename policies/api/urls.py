from django.urls import path

from policies import converters  # noqa: F401 - registers <framework:...>

from . import frameworks as fw
from . import views
from .ci_check import CICheckView

urlpatterns = [
    path("rules/", views.RuleListView.as_view(), name="api-rule-list"),
    path("rules/<slug:rule_id>/", views.RuleDetailView.as_view(), name="api-rule-detail"),
    path(
        "rules/<slug:rule_id>/versions/",
        views.RuleVersionListView.as_view(),
        name="api-rule-versions",
    ),
    path("import/", views.RuleImportView.as_view(), name="api-rule-import"),
    path("export/", views.RuleExportView.as_view(), name="api-rule-export"),
    path("preview/", views.RulePreviewView.as_view(), name="api-rule-preview"),
    path("findings/", views.FindingListView.as_view(), name="api-finding-list"),
    path("findings/counts/", views.FindingCountsView.as_view(), name="api-finding-counts"),
    path("evaluate/", views.EvaluateView.as_view(), name="api-policy-evaluate"),
    path("frameworks/", fw.FrameworkListView.as_view(), name="api-framework-list"),
    path("frameworks/builtin/", fw.BuiltinFrameworkListView.as_view(), name="api-builtin-list"),
    path("frameworks/enable/", fw.FrameworkEnableView.as_view(), name="api-framework-enable"),
    path("frameworks/<framework:slug>/", fw.FrameworkDetailView.as_view(), name="api-framework"),
    path(
        "frameworks/<framework:slug>/controls/<int:pk>/",
        fw.ControlDetailView.as_view(),
        name="api-control",
    ),
    path("scores/", fw.ScoresView.as_view(), name="api-scores"),
    path("trends/", fw.TrendView.as_view(), name="api-trends"),
    path("ci-check/", CICheckView.as_view(), name="api-ci-check"),
    path("exemptions/", views.ExemptionListView.as_view(), name="api-exemption-list"),
    path(
        "exemptions/<int:pk>/approve/",
        views.ExemptionDecideView.as_view(decision="approve"),
        name="api-exemption-approve",
    ),
    path(
        "exemptions/<int:pk>/reject/",
        views.ExemptionDecideView.as_view(decision="reject"),
        name="api-exemption-reject",
    ),
    path("aws-tag-policies/", views.AwsTagPolicyListView.as_view(), name="api-aws-policy-list"),
    path(
        "aws-tag-policies/export/",
        views.AwsTagPolicyExportView.as_view(),
        name="api-aws-policy-export",
    ),
    path(
        "aws-tag-policies/<int:pk>/",
        views.AwsTagPolicyDetailView.as_view(),
        name="api-aws-policy-detail",
    ),
    path(
        "aws-tag-policies/effective/",
        views.AwsEffectivePolicyListView.as_view(),
        name="api-aws-effective",
    ),
    path(
        "aws-tag-policies/effective/<str:account_id>/",
        views.AwsEffectivePolicyDetailView.as_view(),
        name="api-aws-effective-account",
    ),
]
