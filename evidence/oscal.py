"""assessment-results.json: the package's content as a NIST OSCAL Assessment Results document
(OSCAL 1.2.3, the current release; tests/evidence/schemas holds NIST's schema it is checked
against), written as a stream so a million failing resources never sit in memory.

The model, for GRC tools that import OSCAL:
- one `result` for the period (start, end), whose `reviewed-controls` name each framework in
  scope and its controls (one control-selection per framework);
- one observation per control evaluated (method TEST: TagSense evaluates its rules against the
  inventory), with the status at period end, the pass rate over the period and the counts as
  props;
- the failing resources as subjects of one observation per rule that fails at period end (the
  resources a rule fails are the same for every control citing it, and the database yields the
  rows rule by rule: one observation holds them, and the writer keeps nothing per resource);
- one finding per control with a status at period end: not-satisfied with its control
  observation and its failing rules' observations as related observations, or satisfied.

OSCAL forbids empty arrays (minItems 1 everywhere), so a key whose list would be empty is left
out; strings typed StringDatatype may hold no newline nor outer spaces, and markup fields are
Markdown, so untrusted text is flattened or escaped here (`_text`, `_markdown`) before it is
encoded. UUIDs are version 5 (name-based), so the same package always yields the same document,
and the same AWS resource gets the same subject uuid in every package.

Nothing here touches the database: evidence.package gathers `content` objects and calls
`write_assessment_results` with a file opened in binary mode (a ZIP member).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from hashlib import sha1, sha256
from typing import IO, TYPE_CHECKING, Any

import orjson

from evidence import content

if TYPE_CHECKING:
    from _typeshed import SupportsWrite  # a binary file, a ZIP member, a hashing writer

OSCAL_VERSION = "1.2.3"
# The namespace of TagSense's own prop names (OSCAL reserves un-namespaced names for its own).
NS = "urn:tagsense:oscal"
# Name-based UUIDs: resources by ARN (stable across packages), everything else by package.
_RESOURCE_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:tagsense:aws-resource")
_PACKAGE_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:tagsense:evidence-package")
# No OSCAL assessment plan exists: TagSense evaluates its rules continuously. The schema
# requires import-ap; this URN says so rather than pointing at a file that is not there.
NO_ASSESSMENT_PLAN = "urn:tagsense:assessment-plan:none"
_FLUSH_AT = 64 * 1024

_STATE = {"pass": "satisfied", "fail": "not-satisfied"}
_NOT_TOKEN = re.compile(r"[^\w.\-]")  # \w: Unicode letters and digits, as OSCAL's \p{L}\p{N}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>&#|~!])")


def resource_uuid(arn: str) -> str:
    """The subject uuid of an AWS resource: the same ARN always gets the same uuid. This is
    uuid.uuid5(_RESOURCE_NS, arn) (the tests check it), spelt out: it runs once per failing
    resource, and the UUID object costs more than the hash."""
    x = sha1(_RESOURCE_NS_BYTES + arn.encode()).hexdigest()  # noqa: S324 - RFC 4122 version 5
    # The version nibble set to 5, the variant's two top bits to 10 (RFC 4122).
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


_RESOURCE_NS_BYTES = _RESOURCE_NS.bytes
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


def control_token(control_id: str) -> str:
    """An OSCAL token (a letter or "_", then letters, digits, ".", "-", "_") for one of our
    control ids. An id that already is one is kept; another gets its unsafe characters replaced
    and a short hash of the original, so "CC 6.1" and "CC_6.1" never share a token. The original
    id travels beside it in a prop."""
    token = _NOT_TOKEN.sub("_", control_id)
    if not token or not (token[0].isalpha() or token[0] == "_"):
        token = "_" + token
    if token != control_id:
        token += "_" + sha256(control_id.encode()).hexdigest()[:8]
    return token


def _text(value: object) -> str:
    """OSCAL's StringDatatype: no line break, no outer whitespace, not empty (then "-")."""
    return " ".join(str(value).split()) or "-"


def _line(value: object) -> str:
    """A markup-line (Markdown, one line): flattened, and every Markdown/HTML special character
    backslash-escaped so an importing tool shows the text and never renders it as markup."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _text(value))


def _markdown(value: object) -> str:
    """A markup-multiline: line breaks kept, special characters escaped as in `_line`."""
    return "\n".join(_line(line) for line in str(value).splitlines() if line.strip()) or "-"


def _when(moment: datetime) -> str:
    """OSCAL's DateTimeWithTimezoneDatatype, in UTC. A naive datetime is a bug upstream."""
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"timezone-aware datetime required, got {moment!r}")
        moment = moment.astimezone(UTC)
    return moment.isoformat()[:-6] + "Z"  # "+00:00" -> "Z"


def _prop(name: str, value: object) -> dict[str, str]:
    return {"name": name, "ns": NS, "value": _text(value)}


def _props(*pairs: tuple[str, object]) -> list[dict[str, str]]:
    """Props for the pairs whose value is set (None and "" say nothing: no prop)."""
    return [_prop(name, value) for name, value in pairs if value is not None and value != ""]


def _compact(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without its empty lists, dicts and None: OSCAL forbids empty arrays."""
    return {k: v for k, v in obj.items() if v is not None and v != [] and v != {}}


def _dumps(obj: object) -> bytes:
    """Compact UTF-8 JSON. orjson (already the scan path's encoder) rather than json.dumps:
    it is the difference between ~15 s and ~60 s for 1,600,000 failing resources."""
    return orjson.dumps(obj)


class _Out:
    """Buffered output: small encoded pieces gathered and written to `fp` in 64 KiB chunks."""

    def __init__(self, fp: SupportsWrite[bytes]) -> None:
        self.fp, self.parts, self.size = fp, list[bytes](), 0

    def write(self, piece: bytes) -> None:
        self.parts.append(piece)
        self.size += len(piece)
        if self.size >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.fp.write(b"".join(self.parts))
            self.parts, self.size = [], 0


class _Array:
    """A JSON array under `key` in an open object, opened at its first item and left out
    entirely when it gets none (no empty array can be written)."""

    def __init__(self, out: _Out, key: str) -> None:
        self.out, self.key, self.count = out, key, 0

    def item(self, encoded: bytes) -> None:
        self.out.write(b"," + _dumps(self.key) + b":[" if not self.count else b",")
        self.out.write(encoded)
        self.count += 1

    def splice(self, items: IO[bytes], count: int) -> None:
        """`count` items written ahead (_Items: each after a ","), copied in."""
        if not count:
            return
        self.out.flush()
        first = items.read(_FLUSH_AT)
        self.out.write(first if self.count else b"," + _dumps(self.key) + b":[" + first[1:])
        while block := items.read(_FLUSH_AT):
            self.out.write(block)
        self.count += count

    def close(self) -> None:
        if self.count:
            self.out.write(b"]")


class _Items:
    """Items of an array written ahead of it, each after a "," (_Array.splice takes them)."""

    def __init__(self, out: _Out) -> None:
        self.out, self.count = out, 0

    def item(self, encoded: bytes) -> None:
        self.out.write(b",")
        self.out.write(encoded)
        self.count += 1


@dataclass
class RuleObservations:
    """The observations of the failing resources, written ahead of the document (by
    write_rule_observations, while the rest of a package is built): `stream` holds `count`
    observations, `by_rule` each rule's observation uuids."""

    stream: IO[bytes]
    count: int
    by_rule: dict[str, list[str]]


def write_rule_observations(
    fp: SupportsWrite[bytes],
    package_id: str,
    failing: Iterable[content.FailingResource],
    end: datetime,
) -> tuple[int, dict[str, list[str]]]:
    """The rule observations of write_assessment_results() for a package `package_id` whose
    period ends at `end`, written ahead into `fp` (RuleObservations' stream): how many, and
    each rule's observation uuids."""
    out = _Out(fp)
    items = _Items(out)
    by_rule = _write_rule_observations(out, items, package_id, failing, _when(end))
    out.flush()
    return items.count, by_rule


def _metadata(header: content.Header) -> dict[str, Any]:
    org = header.organization_name or header.organization_slug
    party = str(uuid.uuid5(_RESOURCE_NS, f"organization:{header.organization_slug}"))
    return _compact(
        {
            "title": _line(f"TagSense assessment results: {org}"),
            "last-modified": _when(header.generated_at),
            "version": header.generated_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"),
            "oscal-version": OSCAL_VERSION,
            "props": _props(
                ("package-id", header.package_id),
                ("generated-by", header.generated_by),
                ("generator", header.generator),
                *(("scope-team", team) for team in header.scope.teams),
                *(("scope-account", account) for account in header.scope.accounts),
            ),
            "roles": [{"id": "assessor", "title": "Assessor (the organization's TagSense)"}],
            "parties": [
                _compact(
                    {
                        "uuid": party,
                        "type": "organization",
                        "name": _text(org),
                        "short-name": _text(header.organization_slug),
                    }
                )
            ],
            "responsible-parties": [{"role-id": "assessor", "party-uuids": [party]}],
        }
    )


def _reviewed_controls(summary: content.Summary) -> dict[str, Any]:
    """One control-selection per framework in scope: its controls by token, or all of them
    when the package holds none of its controls."""
    selections = []
    slugs = list(summary.header.scope.frameworks)
    slugs += [c.framework_slug for c in summary.controls if c.framework_slug not in slugs]
    for slug in dict.fromkeys(slugs):
        controls = [c for c in summary.controls if c.framework_slug == slug]
        first = controls[0] if controls else None
        selection: dict[str, Any] = _compact(
            {
                "props": _props(
                    ("framework", slug),
                    ("framework-name", first.framework_name if first else None),
                    ("framework-version", first.framework_version if first else None),
                )
            }
        )
        if controls:
            selection["include-controls"] = [
                {"control-id": control_token(c.control_id)} for c in controls
            ]
        else:
            selection["include-all"] = {}  # an empty object is OSCAL's "all": not an array
        selections.append(selection)
    return {"control-selections": selections}


def _control_observation(
    package: str, control: content.ControlResult, collected: str
) -> dict[str, Any]:
    pass_rate = control.pass_rate
    return _compact(
        {
            "uuid": _uuid(package, "control", control.key),
            "title": _line(f"{control.framework_name} {control.control_id}: {control.title}"),
            "description": _markdown(
                f"Evaluation of control {control.control_id} of {control.framework_name} by "
                f"its TagSense rules, at the period's end and for each day of the period."
            ),
            "props": _props(
                ("framework", control.framework_slug),
                ("control-id", control.control_id),
                ("control-token", control_token(control.control_id)),
                ("status", control.status),
                ("failing-resources", control.failing_resources),
                ("exempted-findings", control.exempted_findings),
                ("days-evaluated", len(control.days)),
                ("days-passed", control.days_passed),
                ("pass-rate-percent", pass_rate),
                *(("rule-id", rule) for rule in control.rule_ids),
            ),
            "methods": ["TEST"],
            "types": ["control-objective"],
            "relevant-evidence": [
                {
                    "description": _markdown(
                        "The package's controls, findings and finding-history files, and the "
                        "audit-log extract; manifest.json holds their SHA-256 and "
                        "manifest.sig its signature."
                    )
                }
            ],
            "collected": collected,
            "remarks": None
            if control.rule_ids
            else _markdown("No TagSense rule evaluates this control: it is not assessed."),
        }
    )


def _uuid(package: str, *parts: str) -> str:
    return str(uuid.uuid5(_PACKAGE_NS, "\x1f".join((package, *parts))))


@lru_cache(maxsize=4096)
def _subject_props_shared(
    resource_type: str,
    account_id: str,
    region: str,
    rule_id: str,
    rule_version: int,
    kind: str,
    found_key: str | None,
    severity: str,
    control_keys: tuple[str, ...],
) -> bytes:
    """The props that rows of one rule mostly share, encoded once: ',{prop},{prop}...'."""
    props = _props(
        ("resource-type", resource_type),
        ("account", account_id),
        ("region", region),
        ("rule-id", rule_id),
        ("rule-version", rule_version),
        ("kind", kind),
        ("tag-key", found_key),
        ("severity", severity),
        *(("control", key) for key in control_keys),
    )
    return b"".join(b"," + _dumps(prop) for prop in props)


def _subject(row: content.FailingResource) -> bytes:
    """One failing resource as an encoded subject-reference. It runs once per row (a million
    rows is ordinary), so the shared props come encoded from a cache and only the ARN, its
    uuid and the opening time are encoded per row."""
    arn = row.resource_arn
    shared = _subject_props_shared(
        row.resource_type,
        row.account_id,
        row.region,
        row.rule_id,
        row.rule_version,
        row.kind,
        row.found_key,
        row.severity,
        tuple(row.control_keys),
    )
    text = _text(arn)
    title = _MARKDOWN_SPECIAL.sub(r"\\\1", text) if _MARKDOWN_SPECIAL.search(text) else text
    return b"".join(
        (
            b'{"subject-uuid":"',
            resource_uuid(arn).encode(),
            b'","type":"resource","title":',
            _dumps(title),  # _line(arn)
            _ARN_PROP,
            _dumps(text),
            b"}",
            shared,
            _OPENED_PROP,
            _opened_when(row.opened_at),
            b'"}]}',
        )
    )


@lru_cache(maxsize=4096)
def _opened_when(moment: datetime) -> bytes:
    """_when(), encoded, of a finding's opening: the findings one evaluation opened share it."""
    return _when(moment).encode()


# The encoded props around a subject's own values: _prop("arn", ...) and _prop("opened-at", ...)
# up to their value.
_ARN_PROP = b',"props":[' + _dumps(_prop("arn", "-"))[: -len(b'"-"}')]
_OPENED_PROP = b"," + _dumps(_prop("opened-at", "-"))[: -len(b'-"}')]


def _rule_observation_head(uid: str, rule_id: str, collected: str) -> bytes:
    """An observation of one rule's failing resources, open at its subjects array: the
    subjects follow as they stream in, then "]}" closes it."""
    head = {
        "uuid": uid,
        "title": _line(f"Resources failing rule {rule_id} at the period's end"),
        "description": _markdown(
            f"Each subject is a resource with a finding of rule {rule_id} open at the end "
            "of the period."
        ),
        "props": _props(("rule-id", rule_id)),
        "methods": ["TEST"],
        "types": ["finding"],
        "collected": collected,
    }
    return _dumps(head)[:-1] + b',"subjects":['


def _write_rule_observations(
    out: _Out,
    observations: _Array | _Items,
    package: str,
    failing: Iterable[content.FailingResource],
    collected: str,
) -> dict[str, list[str]]:
    """One observation per run of rows of one rule, its rows as subjects; returns each rule's
    observation uuids for the findings. Rows come rule by rule from the database, so a rule is
    one run; rows out of order only give a rule more observations, never a wrong one."""
    by_rule: dict[str, list[str]] = {}
    current: str | None = None
    for row in failing:
        if row.rule_id != current:
            if current is not None:
                out.write(b"]}")
            current = row.rule_id
            uids = by_rule.setdefault(current, [])
            uids.append(_uuid(package, "rule", current, str(len(uids))))
            observations.item(_rule_observation_head(uids[-1], current, collected))
            out.write(_subject(row))
        else:
            out.write(b"," + _subject(row))
    if current is not None:
        out.write(b"]}")
    return by_rule


def _finding(
    package: str, control: content.ControlResult, rule_observations: dict[str, list[str]]
) -> dict[str, Any]:
    state = _STATE[control.status]
    related = [_uuid(package, "control", control.key)]
    if state == "not-satisfied":
        for rule in control.rule_ids:
            related += rule_observations.get(rule, [])
    return _compact(
        {
            "uuid": _uuid(package, "finding", control.key),
            "title": _line(f"{control.framework_name} {control.control_id}: {state}"),
            "description": _markdown(
                f"At the period's end control {control.control_id} was {state}: "
                f"{control.failing_resources} resources failing its rules, "
                f"{control.exempted_findings} findings exempted."
            ),
            "props": _props(
                ("framework", control.framework_slug),
                ("control-id", control.control_id),
            ),
            "target": {
                "type": "objective-id",
                "target-id": control_token(control.control_id),
                "status": {"state": state, "reason": control.status},
            },
            "related-observations": [{"observation-uuid": u} for u in related],
        }
    )


def write_assessment_results(
    fp: SupportsWrite[bytes],
    summary: content.Summary,
    failing: Iterable[content.FailingResource] = (),
    *,
    ahead: RuleObservations | None = None,
) -> None:
    """Write the OSCAL Assessment Results document of `summary` to `fp`, streaming `failing`
    (rows ordered by rule, as evidence.package reads them) into observation subjects: memory
    holds one row and a few KiB of output at a time, however many rows there are. With
    `ahead`, those observations were written already (write_rule_observations) and are
    copied in."""
    header = summary.header
    package = header.package_id
    collected = _when(header.period.end)
    out = _Out(fp)
    out.write(b'{"assessment-results":{"uuid":' + _dumps(_uuid(package, "assessment-results")))
    out.write(b',"metadata":' + _dumps(_metadata(header)))
    import_ap = {
        "href": NO_ASSESSMENT_PLAN,
        "remarks": _markdown(
            "TagSense has no OSCAL assessment plan: it evaluates its tag rules continuously "
            "against the scanned inventory. The reference is a placeholder."
        ),
    }
    out.write(b',"import-ap":' + _dumps(import_ap))
    scope = header.scope
    result_head = _compact(
        {
            "uuid": _uuid(package, "result"),
            "title": _line(f"Tag governance controls, {', '.join(scope.frameworks)}"),
            "description": _markdown(
                "Each control's status at the end of the period, its daily pass rate over "
                "the period from the recorded history, and the resources failing it at the "
                "end of the period."
            ),
            "start": _when(header.period.start),
            "end": collected,
            "props": _props(
                ("exemptions-in-period", summary.exemptions_in_period),
                ("coverage-gaps", summary.coverage_gaps_total),
                ("audit-chain-intact", "true" if summary.chain.intact else "false"),
                ("audit-chain-head", summary.chain.head_hash),
            ),
            "reviewed-controls": _reviewed_controls(summary),
        }
    )
    out.write(b',"results":[' + _dumps(result_head)[:-1])

    observations = _Array(out, "observations")
    for control in summary.controls:
        observations.item(_dumps(_control_observation(package, control, collected)))
    if ahead is None:
        rule_observations = _write_rule_observations(out, observations, package, failing, collected)
    else:
        observations.splice(ahead.stream, ahead.count)
        rule_observations = ahead.by_rule
    observations.close()

    findings = _Array(out, "findings")
    for control in summary.controls:
        if control.status in _STATE:
            findings.item(_dumps(_finding(package, control, rule_observations)))
    findings.close()
    out.write(b"}]}}\n")
    out.flush()
