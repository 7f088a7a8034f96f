from django.urls import path

from . import converters, views  # noqa: F401 - converters registers <framework:...>

urlpatterns = [
    path("", views.RuleListView.as_view(), name="policies"),
    path("import/", views.RuleImportView.as_view(), name="rule-import"),
    path("export.yaml", views.RuleExportView.as_view(), name="rule-export"),
    path("evaluate/", views.EvaluateView.as_view(), name="policy-evaluate"),
    path("preview/", views.RulePreviewView.as_view(), name="rule-preview"),
    path("rules/new/", views.RuleEditView.as_view(), name="rule-new"),
    path("rules/<slug:rule_id>/", views.RuleEditView.as_view(), name="rule-edit"),
    path("frameworks/", views.FrameworkListView.as_view(), name="framework-list"),
    path("frameworks/enable/", views.FrameworkEnableView.as_view(), name="framework-enable"),
    path("frameworks/new/", views.FrameworkCreateView.as_view(), name="framework-create"),
    path(
        "frameworks/<framework:slug>/",
        views.FrameworkDetailView.as_view(),
        name="framework-detail",
    ),
    path(
        "frameworks/<framework:slug>/delete/",
        views.FrameworkDeleteView.as_view(),
        name="framework-delete",
    ),
    path(
        "frameworks/<framework:slug>/controls/<int:pk>/rules/",
        views.ControlRulesView.as_view(),
        name="control-rules",
    ),
    path("rules/<slug:rule_id>/delete/", views.RuleDeleteView.as_view(), name="rule-delete"),
    path("aws/", views.AwsTagPolicyListView.as_view(), name="aws-policy-list"),
    path("aws/export.json", views.AwsTagPolicyExportView.as_view(), name="aws-policy-export"),
    path("aws/<int:pk>/", views.AwsTagPolicyDetailView.as_view(), name="aws-policy-detail"),
    path("aws/<int:pk>/delete/", views.AwsTagPolicyDeleteView.as_view(), name="aws-policy-delete"),
    path("aws/effective/", views.AwsEffectivePolicyView.as_view(), name="aws-effective"),
    path(
        "aws/effective/<str:account_id>/",
        views.AwsEffectivePolicyView.as_view(),
        name="aws-effective-account",
    ),
]
