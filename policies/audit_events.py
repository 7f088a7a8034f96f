from audit.registry import register

RULE_CREATE = register("policy.rule_create", "A tag rule was created")
RULE_UPDATE = register("policy.rule_update", "A tag rule changed (a new version)")
RULE_DELETE = register("policy.rule_delete", "A tag rule was deleted")
RULE_IMPORT = register("policy.rule_import", "A rule file was imported")
EVALUATE = register("policy.evaluate", "Rules were evaluated into findings")
EVALUATE_FAIL = register(
    "policy.evaluate_fail", "The evaluation after a scan failed (the scan is kept)"
)
EXEMPTION_REQUEST = register("policy.exemption_request", "An exemption was requested")
EXEMPTION_APPROVE = register("policy.exemption_approve", "An exemption was approved")
EXEMPTION_REJECT = register("policy.exemption_reject", "An exemption was rejected")
EXEMPTION_EXPIRE = register("policy.exemption_expire", "An exemption expired; findings reopened")
AWS_TAG_POLICY_IMPORT = register(
    "policy.aws_tag_policy_import", "An AWS tag policy was imported and attached"
)
AWS_TAG_POLICY_UPDATE = register(
    "policy.aws_tag_policy_update", "An AWS tag policy changed (a new version)"
)
AWS_TAG_POLICY_DELETE = register("policy.aws_tag_policy_delete", "An AWS tag policy was deleted")


FRAMEWORK_ENABLE = register(
    "policy.framework_enable", "A built-in framework was enabled (its missing rules installed)"
)
FRAMEWORK_CREATE = register("policy.framework_create", "A custom framework was created")
FRAMEWORK_UPDATE = register(
    "policy.framework_update", "A framework's controls or their rules changed"
)
FRAMEWORK_DELETE = register("policy.framework_delete", "A framework was removed")
SCORE_SNAPSHOT = register("policy.score_snapshot", "The day's compliance scores were recorded")
