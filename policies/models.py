"""Rules an organization keeps (with every earlier version), and later their findings."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from django.contrib.postgres.indexes import BrinIndex
from django.core.exceptions import PermissionDenied
from django.db import models

from inventory.models import AccountScopedQuerySet
from inventory.models.resources import _bulk_organization
from tagsense import clock
from tagsense.tenancy.context import Principal
from tagsense.tenancy.models import TenantModel

from .engine.spec import RuleSpec, parse_rules


def spec_from_dict(data: dict) -> RuleSpec:
    """A stored rule mapping (spec.rule_to_dict) back to its RuleSpec, through the parser so a
    stored rule is as valid as an imported one was when it was saved (parse_rules's `stored`:
    not held to limits on pattern shapes added since). JSON is YAML. Memoised: a findings
    list or CSV reads the same few rules once per row."""
    return _parse_rule_json(json.dumps({"version": 1, "rules": [data]}, sort_keys=True))


@lru_cache(maxsize=512)
def _parse_rule_json(text: str) -> RuleSpec:
    [rule] = parse_rules(text, stored=True)
    return rule


class Rule(TenantModel):
    """One tag rule of an organization. `spec` is spec.rule_to_dict() of the RuleSpec; `rule_id`
    is its id (unique per organization). Every change writes a RuleVersion (policies.services)."""

    USER, AWS_TAG_POLICY = "", "aws_tag_policy"
    ORIGINS = [(USER, "written in TagSense"), (AWS_TAG_POLICY, "generated from AWS tag policies")]

    rule_id = models.SlugField(max_length=64)
    spec = models.JSONField()
    active = models.BooleanField(default=True)
    # Where the rule comes from: "" for rules people write; aws_tag_policy for the rules
    # policies.aws.imported generates from an account's effective AWS tag policy (it owns them).
    origin = models.CharField(max_length=32, choices=ORIGINS, default=USER, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["rule_id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "rule_id"], name="uniq_policy_rule_id")
        ]

    def __str__(self) -> str:
        return self.rule_id

    @property
    def rule_spec(self) -> RuleSpec:
        if getattr(self, "_spec_cache", None) is None or self._spec_cache[0] != self.spec:
            self._spec_cache = (self.spec, spec_from_dict(self.spec))
        return self._spec_cache[1]

    @property
    def title(self) -> str:
        return self.spec.get("title", "")

    @property
    def severity(self) -> str:
        return self.spec.get("severity", "medium")

    @property
    def enforcement(self) -> str:
        return self.spec.get("enforcement", "report")


class RuleVersion(TenantModel):
    """A rule as it was after one change: created, updated (spec or active flag), deleted
    (spec is the last one before deletion). Kept when the rule is deleted."""

    CREATE, UPDATE, DELETE = "create", "update", "delete"

    rule = models.ForeignKey(
        Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="versions"
    )
    rule_slug = models.SlugField(max_length=64, help_text="The rule's id (kept after deletion)")
    version = models.PositiveIntegerField()
    change = models.CharField(max_length=16)
    spec = models.JSONField()
    active = models.BooleanField()
    changed_by = models.CharField(max_length=255, blank=True)
    # tagsense.clock: a replayed history (demo.simulation) versions its rules on its own days,
    # and the rules in force at T (policies.history) are read from here.
    changed_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["rule_slug", "-version", "-id"]
        indexes = [models.Index(fields=["organization", "rule_slug"], name="rule_version_idx")]

    def __str__(self) -> str:
        return f"{self.rule_slug} v{self.version}"


class FindingQuerySet(AccountScopedQuerySet):
    """restrict() narrows to the accounts the member may see (the resource's account, stored
    on the finding).

    Read the status through open(), exempted() and with_status() (and an instance's
    `current_status`): an exempted finding whose exemption's expiry has passed is open from that
    moment, before the daily task writes it down (policies.exemptions.expire). Reads never
    write."""

    def open(self):
        return self.filter(models.Q(status=Finding.OPEN) | lapsed_exemption())

    def exempted(self):
        """Exempted, by an exemption still in force."""
        return self.filter(status=Finding.EXEMPTED).exclude(lapsed_exemption())

    def with_status(self, status: str):
        """The findings whose status as of now is `status` (open, resolved or exempted)."""
        if status == Finding.OPEN:
            return self.open()
        if status == Finding.EXEMPTED:
            return self.exempted()
        return self.filter(status=status)


def lapsed_exemption() -> models.Q:
    """Findings still marked exempted whose exemption's expiry has passed: open as of now."""
    return models.Q(
        status=Finding.EXEMPTED,
        exemption_id__in=Exemption.objects.filter(expires_at__lte=clock.now()).values("pk"),
    )


# The same in SQL, for statements that read findings `f` (policies.scoring.scores): the finding is
# open as of now. Parameters: the organization's id, now.
OPEN_FINDING_SQL = (
    "(f.status = 'open' OR f.status = 'exempted' AND f.exemption_id IN (SELECT e.id FROM "
    "policies_exemption e WHERE e.organization_id = %s AND e.expires_at <= %s))"
)


class Finding(TenantModel):
    """One rule failing on one resource. A bulk table (inventory's conventions): written by
    policies.evaluation in set-based statements, no foreign-key constraints, one unique index
    on (organization, resource, rule) that the upsert's ON CONFLICT uses and that finds a
    scan's resources' findings by resource."""

    OPEN, RESOLVED, EXEMPTED = "open", "resolved", "exempted"
    STATUSES = [(s, s) for s in (OPEN, RESOLVED, EXEMPTED)]

    organization = _bulk_organization()
    rule = models.ForeignKey(
        Rule, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    resource = models.ForeignKey(
        "inventory.Resource",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    account = models.ForeignKey(
        "inventory.AwsAccount",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    rule_version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=STATUSES, default=OPEN)
    kind = models.CharField(max_length=16)
    found_key = models.CharField(max_length=128, null=True, blank=True)
    severity = models.CharField(max_length=8)
    enforcement = models.CharField(max_length=8)
    owner = models.CharField(max_length=256, blank=True, help_text="The resource's Owner tag")
    owner_teams = models.JSONField(
        default=list, blank=True, help_text="Slugs of the teams holding the resource's account"
    )
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The exemption last requested for this finding (pending, approved, rejected or expired).
    exemption = models.ForeignKey(
        "policies.Exemption",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="findings",
        db_constraint=False,
        db_index=False,  # the partial index below: almost every finding has none
    )

    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "resource", "rule"], name="uniq_finding_resource_rule"
            )
        ]
        indexes = [
            models.Index(
                fields=["exemption"],
                name="finding_exemption_idx",
                condition=models.Q(exemption__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} on {self.resource_id}: {self.kind}"

    @property
    def current_status(self) -> str:
        """The status as of now (FindingQuerySet): exempted only while its exemption is in
        force. Reads the exemption: select it with the finding."""
        if self.status == self.EXEMPTED and self.exemption_id and self.exemption.lapsed:
            return self.OPEN
        return self.status


class FindingEvent(TenantModel):
    """One change of a finding's status: the append-only ledger the history of findings is
    read back from (policies.history). A bulk table under Finding's conventions, written
    set-based in the statements that change findings (policies.evaluation, policies.exemptions),
    and denormalised: no foreign key, so it outlives the finding, its rule and its resource.

    `open_delta` is +1 into open, -1 out of open, 0 otherwise, and `exempt_delta` the same for
    exempted: the findings open (exempted) at T over any set of rules or accounts are the sum of
    the deltas of the events at or before T, read from one index without the table.

    Append-only in the database: a trigger (migration 0009) refuses UPDATE and DELETE; here
    save() of an existing row and delete() refuse too. TRUNCATE stays possible (test flushes)."""

    OPENED, RESOLVED, EXEMPTED = "opened", "resolved", "exempted"
    EXEMPTION_EXPIRED, REOPENED = "exemption_expired", "reopened"
    RULE_RETIRED, RESOURCE_DELETED = "rule_retired", "resource_deleted"
    EVENTS = [
        (e, e)
        for e in (
            OPENED,
            RESOLVED,
            EXEMPTED,
            EXEMPTION_EXPIRED,
            REOPENED,
            RULE_RETIRED,
            RESOURCE_DELETED,
        )
    ]

    # Not _bulk_organization(): an organization's ledger is never deleted by a cascade (the
    # trigger would refuse it; its audit events already protect the organization).
    organization = models.ForeignKey(  # type: ignore[assignment]
        "accounts.Organization",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    finding_id = models.BigIntegerField()
    rule_pk = models.BigIntegerField()
    rule_slug = models.SlugField(max_length=64, db_index=False)
    rule_version = models.PositiveIntegerField()
    resource_id = models.BigIntegerField()
    account_id = models.BigIntegerField(help_text="inventory.AwsAccount's primary key")
    kind = models.CharField(max_length=16)
    found_key = models.CharField(max_length=128, null=True, blank=True)
    severity = models.CharField(max_length=8)
    exemption_id = models.BigIntegerField(null=True, blank=True)
    event = models.CharField(max_length=20, choices=EVENTS)
    from_status = models.CharField(max_length=16, blank=True, help_text="'' for a new finding")
    to_status = models.CharField(max_length=16)
    open_delta = models.SmallIntegerField()
    exempt_delta = models.SmallIntegerField()
    at = models.DateTimeField()

    # tagsense.tenancy.db: the application's role may not UPDATE, DELETE or TRUNCATE it either.
    append_only = True

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # The findings open at T of some rules (a control, a framework): an index-only scan.
            # By the rule's id, not its primary key: RuleVersion keeps ids, and a deleted
            # rule's pk is gone from it; at any instant one rule holds an id.
            models.Index(
                fields=["organization", "rule_slug", "at"],
                include=["open_delta", "exempt_delta", "resource_id", "account_id"],
                name="finding_event_rule_at_idx",
            ),
            # Each finding's last state at T.
            models.Index(
                fields=["organization", "finding_id", "at"], name="finding_event_finding_idx"
            ),
            # What changed in a period: a BRIN on the time (rows arrive in time order, expiries
            # a little backdated): next to nothing to maintain, where a b-tree on
            # (organization, at) cost about 3 s of a first evaluation's 1.6 million rows.
            BrinIndex(fields=["at"], name="finding_event_at_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.event} finding {self.finding_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionDenied("finding events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionDenied("finding events are append-only")


class ExemptionQuerySet(AccountScopedQuerySet):
    def in_accounts(self, accounts):
        """Exemptions covering at least one finding under the given accounts (what an editor
        or viewer sees: never a request about another team's resources only)."""
        covered = Finding.objects.filter(
            exemption=models.OuterRef("pk"), account__in=accounts.values("pk")
        )
        return self.filter(models.Exists(covered))


class Exemption(TenantModel):
    """A request to accept some findings for a while, with a justification. Requested by a
    member who may `change`; approved (or rejected) by an owner or admin who is not the
    requester; its findings are `exempted` from approval until `expires_at`, then reopen."""

    PENDING, APPROVED, REJECTED, EXPIRED = "pending", "approved", "rejected", "expired"
    STATUSES = [(s, s) for s in (PENDING, APPROVED, REJECTED, EXPIRED)]

    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    justification = models.TextField()
    expires_at = models.DateTimeField()
    filters = models.JSONField(default=dict, blank=True, help_text="How the findings were chosen")
    finding_count = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=255)
    # Who answers for the request (tagsense.tenancy.context.Principal): "user:<id>" by session
    # or personal token, "service_account:<id>" by any of the account's tokens.
    requested_by_principal = models.CharField(max_length=80, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_label = models.CharField(max_length=255, blank=True)
    decided_by_principal = models.CharField(max_length=80, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = ExemptionQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"exemption {self.pk} ({self.status})"

    @property
    def lapsed(self) -> bool:
        """Its expiry has passed: whatever its stored status, it exempts nothing now."""
        return self.expires_at <= clock.now()

    @property
    def current_status(self) -> str:
        """The status as of now: an approved exemption past its expiry is expired, before the
        daily task writes it down (policies.exemptions.expire)."""
        return self.EXPIRED if self.status == self.APPROVED and self.lapsed else self.status

    @property
    def requester(self) -> Principal | None:
        """Who requested it; None when not recorded (its requester cannot be told apart)."""
        recorded = Principal.parse(self.requested_by_principal)
        if recorded is None and self.requested_by_id is not None:
            return Principal(Principal.USER, str(self.requested_by_id))
        return recorded


class AwsTagPolicy(TenantModel):
    """An AWS Organizations tag policy document imported into TagSense and where it is
    attached: the root, an OU (by the OU path discovery stores, "Root/Production/Web") or one
    AWS account id. `position` is the attachment order among the policies of one target.
    Every change writes an AwsTagPolicyVersion (policies.aws.imported)."""

    ROOT, OU, ACCOUNT = "root", "ou", "account"
    TARGETS = [(ROOT, "organization root"), (OU, "organizational unit"), (ACCOUNT, "AWS account")]

    name = models.CharField(max_length=128)
    document = models.TextField(help_text="The policy's JSON as imported")
    target_type = models.CharField(max_length=8, choices=TARGETS)
    target = models.CharField(
        max_length=1000, blank=True, help_text="OU path or 12-digit account id; empty for root"
    )
    position = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["target_type", "target", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_aws_tag_policy")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def target_label(self) -> str:
        return "root" if self.target_type == self.ROOT else f"{self.target_type} {self.target}"


class AwsTagPolicyVersion(TenantModel):
    """An AWS tag policy as it was after one change (kept when the policy is deleted)."""

    CREATE, UPDATE, DELETE = "create", "update", "delete"

    policy = models.ForeignKey(
        AwsTagPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="versions"
    )
    name = models.CharField(max_length=128)
    version = models.PositiveIntegerField()
    change = models.CharField(max_length=16)
    document = models.TextField()
    target_type = models.CharField(max_length=8)
    target = models.CharField(max_length=1000, blank=True)
    position = models.PositiveIntegerField()
    changed_by = models.CharField(max_length=255, blank=True)
    changed_at = models.DateTimeField(default=clock.now)  # as RuleVersion's

    class Meta:
        ordering = ["name", "-version", "-id"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Framework(TenantModel):
    """A compliance framework of the organization: a built-in one (policies/data/frameworks,
    `builtin` is its file id) once enabled, or a custom one an admin wrote. Its controls cite
    tag rules by id (policies.frameworks_service)."""

    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=100, blank=True)
    source = models.URLField(max_length=500, blank=True)
    builtin = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="uniq_framework_slug")
        ]

    def __str__(self) -> str:
        return self.name


class Control(TenantModel):
    """One control of a framework and the ids of the tag rules that evidence it. A cited rule
    the organization does not hold (deleted since) counts for nothing and is shown missing."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="controls")
    control_id = models.CharField(max_length=64)
    title = models.TextField()
    rationale = models.TextField(blank=True)
    rule_ids = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["framework", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["framework", "control_id"], name="uniq_framework_control"
            )
        ]

    def __str__(self) -> str:
        return f"{self.framework.slug} {self.control_id}"


class ScoreSnapshot(TenantModel):
    """A day's compliance score of one scope (policies.scoring.scores): the whole organization, a
    framework, a control (key "<framework>/<control>"), a team (slug) or an AWS account (its
    12-digit id). One row per (day, kind, key); a later snapshot the same day replaces it."""

    ORGANIZATION, FRAMEWORK, CONTROL, TEAM, ACCOUNT = (
        "organization",
        "framework",
        "control",
        "team",
        "account",
    )
    KINDS = [(k, k) for k in (ORGANIZATION, FRAMEWORK, CONTROL, TEAM, ACCOUNT)]

    day = models.DateField()
    kind = models.CharField(max_length=16, choices=KINDS)
    key = models.CharField(max_length=200, blank=True)
    label = models.CharField(max_length=300, blank=True)
    in_scope = models.PositiveIntegerField()
    compliant = models.PositiveIntegerField()
    taken_at = models.DateTimeField()
    # Always "measured": computed from the organization's recorded findings (the beat task, an
    # evaluation, the score_snapshot command; the demo's past days too, which it simulates
    # through the real scan and evaluation code: demo.simulation). Kept, with the trends API's
    # `source`, for the clients that read it; invented rows ("demo") were deleted by
    # migration 0009.
    MEASURED = "measured"
    source = models.CharField(max_length=16, choices=[(MEASURED, MEASURED)], default=MEASURED)

    class Meta:
        ordering = ["kind", "key", "day"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "kind", "key"], name="uniq_score_snapshot"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.key}: {self.compliant}/{self.in_scope}"

    @property
    def score(self) -> float | None:
        return round(100 * self.compliant / self.in_scope, 1) if self.in_scope else None


class EvaluationState(TenantModel):
    """What the organization's findings were last brought up to date with
    (policies.evaluation): each active rule's version, the teams holding each account, and the
    engine's version. A full evaluation compares them with the present and with the resources
    evaluated (EvaluatedResource) and evaluates only what differs."""

    rules = models.JSONField(default=dict, help_text="{rule pk: version} of the active rules")
    grants = models.CharField(max_length=64, blank=True, help_text="digest of account teams")
    engine = models.PositiveIntegerField(default=0)
    evaluated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="uniq_evaluation_state")
        ]


class EvaluatedResource(TenantModel):
    """The fingerprint (inventory.Resource.fingerprint: name, tags and configuration) of each
    live resource when its findings were last brought up to date. A bulk table: one row per
    live resource, no foreign-key constraints, UNLOGGED (migration 0007): derived data, and
    a ledger emptied by a crash makes the next run evaluate everything."""

    # The resource's id is the key: one index, written in order (a second, on organization and
    # resource, doubled the cost of recording a million resources).
    resource_id = models.BigIntegerField(primary_key=True)
    organization = _bulk_organization()
    fingerprint = models.CharField(max_length=40)
