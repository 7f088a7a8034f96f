from rest_framework import serializers

from policies.engine.spec import dump_rules
from policies.models import AwsTagPolicy, Rule, RuleVersion
from policies.services import fix_for


class RuleSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="rule_id", read_only=True)
    yaml = serializers.SerializerMethodField()

    class Meta:
        model = Rule
        fields = ["id", "spec", "yaml", "active", "origin", "version", "created_at",
                  "updated_at", "updated_by"]  # fmt: skip
        read_only_fields = fields

    def get_yaml(self, rule: Rule) -> str:
        return dump_rules([rule.rule_spec])


class RuleWriteSerializer(serializers.Serializer):
    """Give the rule either as `spec` (the mapping of one rule, as in a rule file) or as `yaml`
    (a rule file holding exactly this one rule)."""

    spec = serializers.JSONField(required=False)
    yaml = serializers.CharField(required=False, trim_whitespace=False, max_length=1_000_000)
    active = serializers.BooleanField(required=False)


class RuleVersionSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="rule_slug", read_only=True)

    class Meta:
        model = RuleVersion
        fields = ["id", "version", "change", "spec", "active", "changed_by", "changed_at"]


class ImportSerializer(serializers.Serializer):
    yaml = serializers.CharField(trim_whitespace=False, max_length=1_000_000)
    mode = serializers.ChoiceField(choices=["merge", "replace"], default="merge")


class ImportResultSerializer(serializers.Serializer):
    mode = serializers.CharField()
    created = serializers.ListField(child=serializers.CharField())
    updated = serializers.ListField(child=serializers.CharField())
    deleted = serializers.ListField(child=serializers.CharField())


class PreviewSampleSerializer(serializers.Serializer):
    resource_id = serializers.IntegerField(source="resource.pk")
    arn = serializers.CharField(source="resource.arn")
    name = serializers.CharField(source="resource.name")
    kind = serializers.CharField()
    found_key = serializers.CharField(allow_null=True)


class PreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    sample = PreviewSampleSerializer(many=True)


class FindingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    rule = serializers.CharField(source="rule.rule_id")
    rule_version = serializers.IntegerField()
    resource_id = serializers.IntegerField()
    arn = serializers.CharField(source="resource.arn")
    resource_type = serializers.CharField(source="resource.resource_type")
    account_id = serializers.CharField(source="account.account_id")
    status = serializers.CharField(source="current_status")  # as of now: expiry is read time
    kind = serializers.CharField()
    found_key = serializers.CharField(allow_null=True)
    severity = serializers.CharField()
    enforcement = serializers.CharField()
    owner = serializers.CharField()
    owner_teams = serializers.ListField(child=serializers.CharField())
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    suggested_fix = serializers.SerializerMethodField()

    def get_suggested_fix(self, finding) -> str:

        return fix_for(finding)


class EvaluateResultSerializer(serializers.Serializer):
    trigger = serializers.CharField()
    rules = serializers.IntegerField()
    mode = serializers.ChoiceField(
        choices=["full", "incremental"],
        help_text="full: every rule over every resource; incremental: only what changed",
    )
    rules_evaluated = serializers.IntegerField(help_text="rules evaluated over every resource")
    resources_evaluated = serializers.JSONField(
        help_text='resources evaluated by every rule: a count, or "all"'
    )
    failing = serializers.IntegerField(help_text="open findings after the run")
    new = serializers.IntegerField()
    resolved = serializers.IntegerField()
    snapshot_rows = serializers.IntegerField(help_text="score snapshot rows written (0: kept)")


class ExemptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(source="current_status")  # as of now: expiry is read time
    justification = serializers.CharField()
    expires_at = serializers.DateTimeField()
    finding_count = serializers.IntegerField()
    filters = serializers.JSONField()
    requested_by = serializers.CharField(source="requested_by_label")
    requested_at = serializers.DateTimeField()
    decided_by = serializers.CharField(source="decided_by_label")
    decided_at = serializers.DateTimeField(allow_null=True)


class ExemptionRequestSerializer(serializers.Serializer):
    """Name the findings by id, or give `filters` (the findings filters): every open finding
    matching them that the caller may see."""

    justification = serializers.CharField(max_length=5000)
    expires_at = serializers.DateTimeField()
    findings = serializers.ListField(child=serializers.IntegerField(), required=False)
    filters = serializers.DictField(child=serializers.CharField(), required=False)


class FindingCountSerializer(serializers.Serializer):
    rule = serializers.CharField()
    open = serializers.IntegerField()
    exempted = serializers.IntegerField()
    resolved = serializers.IntegerField()


class AwsTagPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = AwsTagPolicy
        fields = [
            "id",
            "name",
            "document",
            "target_type",
            "target",
            "position",
            "version",
            "created_at",
            "updated_at",
            "updated_by",
        ]
        read_only_fields = fields


class AwsTagPolicyWriteSerializer(serializers.Serializer):
    """`document` is the policy's JSON text (or the decoded object); all fields are optional on
    PUT."""

    name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    document = serializers.JSONField(required=False)
    target_type = serializers.ChoiceField(choices=["root", "ou", "account"], required=False)
    target = serializers.CharField(required=False, allow_blank=True)
    position = serializers.IntegerField(required=False, min_value=0, max_value=100_000)


class AwsEffectivePolicySerializer(serializers.Serializer):
    account_id = serializers.CharField(source="account.account_id")
    account_name = serializers.CharField(source="account.name")
    ou_path = serializers.CharField(source="account.ou_path")
    levels = serializers.SerializerMethodField()
    effective_policy = serializers.JSONField(
        source="rendered",
        allow_null=True,
        help_text="The policy as AWS displays it; null when no tag policy applies to the account "
        "(then `error` is EffectivePolicyNotFoundException, as AWS answers)",
    )
    error = serializers.CharField(allow_null=True)
    ignored = serializers.ListField(child=serializers.DictField())

    def get_levels(self, item) -> list[dict]:
        return [
            {"level": level.label, "policies": [p.name for p in level.policies]}
            for level in item.levels
        ]


class ScoreFieldsSerializer(serializers.Serializer):
    in_scope = serializers.IntegerField(help_text="Live resources at least one rule applies to")
    compliant = serializers.IntegerField(help_text="Of those, with no open finding")
    score = serializers.FloatField(allow_null=True, help_text="compliant / in_scope, in %")


class SpendSerializer(serializers.Serializer):
    in_scope = serializers.DecimalField(
        max_digits=20, decimal_places=2, help_text="Cost of the resources in scope over the period"
    )
    compliant = serializers.DecimalField(
        max_digits=20, decimal_places=2, help_text="Of that, the cost of the compliant ones"
    )
    failing = serializers.DecimalField(
        max_digits=20,
        decimal_places=2,
        help_text="Untagged dollars: the cost of the resources failing at least one rule",
    )
    score = serializers.FloatField(
        allow_null=True, help_text="compliant / in_scope spend, in %; null with no spend in scope"
    )
    resources_with_cost = serializers.IntegerField(
        help_text="Resources in scope with a cost in the period"
    )


class ScoredSerializer(ScoreFieldsSerializer):
    spend = SpendSerializer(
        allow_null=True,
        help_text="The same resources weighted by their cost over spend_period; null when the "
        "accounts in scope have no cost data",
    )


class CostPeriodSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField(help_text="Exclusive, as in Cost Explorer")
    days = serializers.IntegerField()
    currency = serializers.CharField()
    sources = serializers.ListField(
        child=serializers.ChoiceField(choices=["cost_explorer", "demo"]),
        help_text="Where the period's costs come from; demo: invented demo data, not measured",
    )


class ControlSerializer(ScoredSerializer):
    id = serializers.IntegerField()
    control_id = serializers.CharField()
    title = serializers.CharField()
    rules = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField(
        help_text="pass, fail (a rule has an open finding in scope) or no_rules"
    )


class FailingResourceSerializer(serializers.Serializer):
    resource = serializers.IntegerField()
    arn = serializers.CharField()
    resource_type = serializers.CharField()
    account = serializers.CharField()
    rule = serializers.CharField()
    kind = serializers.CharField()


class ControlDetailSerializer(ControlSerializer):
    failing_resources = FailingResourceSerializer(many=True)


class FrameworkSerializer(ScoredSerializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    version = serializers.CharField()
    source = serializers.CharField()
    builtin = serializers.BooleanField()
    controls = ControlSerializer(many=True)


class BuiltinFrameworkSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    version = serializers.CharField()
    source = serializers.CharField()
    controls = serializers.IntegerField()
    enabled = serializers.BooleanField()


class FrameworkCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    controls = serializers.ListField(
        child=serializers.DictField(), help_text="[{id, title, rules?: [rule ids]}]"
    )


class FrameworkEnableSerializer(serializers.Serializer):
    framework = serializers.CharField(help_text="id of a built-in framework")


class ControlRulesSerializer(serializers.Serializer):
    rules = serializers.ListField(child=serializers.CharField())


class ScoresSerializer(serializers.Serializer):
    organization = ScoredSerializer()
    frameworks = FrameworkSerializer(many=True)
    spend_period = CostPeriodSerializer(
        allow_null=True, help_text="The days the spends cover; null without cost data"
    )


class ScoreRowSerializer(ScoredSerializer):
    key = serializers.CharField()


class DimensionScoresSerializer(serializers.Serializer):
    by = serializers.CharField()
    rows = ScoreRowSerializer(many=True)
    spend_period = CostPeriodSerializer(
        allow_null=True, help_text="The days the spends cover; null without cost data"
    )


class TrendPointSerializer(ScoreFieldsSerializer):
    day = serializers.DateField()
    source = serializers.ChoiceField(
        choices=["measured"],
        help_text="Always measured: computed from recorded findings (the demo's past days too,"
        " simulated through the real scan and evaluation code)",
    )


class TrendSerializer(serializers.Serializer):
    kind = serializers.CharField()
    key = serializers.CharField()
    days = serializers.IntegerField()
    points = TrendPointSerializer(many=True)
