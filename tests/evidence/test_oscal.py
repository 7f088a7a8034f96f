"""assessment-results.json (evidence.oscal) against NIST's own schema for OSCAL 1.2.3
(schemas/README.md says where it comes from), with the data an export really holds: passing,
failing and unassessed controls, control ids OSCAL would reject as they are, hostile text,
many subjects, and a stream of 200,000 failing resources."""

from __future__ import annotations

import io
import json
import tracemalloc
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import jsonschema_rs
import pytest

from evidence import content, oscal
from tests.evidence import sample

SCHEMA = Path(__file__).parent / "schemas" / "oscal_assessment-results_schema_1.2.3.json"


@cache
def validator() -> jsonschema_rs.Draft7Validator:
    return jsonschema_rs.Draft7Validator(json.loads(SCHEMA.read_text()), validate_formats=True)


def errors(document: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, e.instance_path))}: {e.message}"
        for e in validator().iter_errors(document)
    ]


def write(summary=None, failing=()) -> dict:
    buf = io.BytesIO()
    oscal.write_assessment_results(buf, summary or sample.summary(), failing)
    return json.loads(buf.getvalue().decode())


def empty_arrays(node, path="") -> list[str]:
    if isinstance(node, list):
        found = [path] if not node else []
        return found + [p for i, item in enumerate(node) for p in empty_arrays(item, f"{path}/{i}")]
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in empty_arrays(v, f"{path}/{k}")]
    return []


def observations_by_rule(result: dict) -> dict[str, dict]:
    return {
        prop["value"]: obs
        for obs in result["observations"]
        if "finding" in obs.get("types", [])
        for prop in obs["props"]
        if prop["name"] == "rule-id"
    }


def test_the_schema_is_nists_and_rejects_what_oscal_forbids():
    """The validator is not a yes-machine: an empty array, a v1 uuid and a naive time fail."""
    schema = json.loads(SCHEMA.read_text())
    assert schema["$id"] == "http://csrc.nist.gov/ns/oscal/1.2.3/oscal-ar-schema.json"
    document = write(failing=sample.failing(3))
    assert errors(document) == []
    broken = json.loads(json.dumps(document))
    broken["assessment-results"]["results"][0]["findings"][0]["props"] = []
    assert errors(broken)
    broken = json.loads(json.dumps(document))
    broken["assessment-results"]["uuid"] = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"  # version 1
    assert errors(broken)
    broken = json.loads(json.dumps(document))
    broken["assessment-results"]["results"][0]["start"] = "2026-01-01T00:00:00"
    assert errors(broken)


def test_passing_and_failing_controls_with_many_subjects_validate():
    document = write(failing=sample.failing(500))
    assert errors(document) == []
    assert empty_arrays(document) == []
    ar = document["assessment-results"]
    assert ar["metadata"]["oscal-version"] == "1.2.3"
    assert ar["import-ap"]["href"] == oscal.NO_ASSESSMENT_PLAN
    (result,) = ar["results"]
    assert result["start"] == "2026-01-01T00:00:00Z"
    assert result["end"] == "2026-01-30T23:59:59Z"

    # The frameworks and their controls are the reviewed controls, under valid tokens.
    selections = result["reviewed-controls"]["control-selections"]
    assert [[p["value"] for p in s["props"] if p["name"] == "framework"] for s in selections] == [
        ["pci-dss-4"], ["soc2"],
    ]  # fmt: skip
    soc2 = [c["control-id"] for c in selections[1]["include-controls"]]
    assert soc2[:2] == ["CC6.1", "CC7.2"]
    assert soc2[2] == oscal.control_token("CC 8.1 (change)") != "CC 8.1 (change)"

    # One observation per control evaluated, its original id kept in a prop.
    controls = [o for o in result["observations"] if "control-objective" in o["types"]]
    assert len(controls) == 5
    ids = [next(p["value"] for p in o["props"] if p["name"] == "control-id") for o in controls]
    assert ids == ["CC6.1", "CC7.2", "CC 8.1 (change)", "CC9.9", "Req-2.2"]
    assert all(o["methods"] == ["TEST"] and o["collected"] == result["end"] for o in controls)

    # Failing resources are the subjects of their rule's observation.
    by_rule = observations_by_rule(result)
    assert len(by_rule["owner-required"]["subjects"]) == 500
    assert len(by_rule["cost-center"]["subjects"]) == 500
    subject = by_rule["cost-center"]["subjects"][1]
    assert subject["type"] == "resource"
    props = {p["name"]: p["value"] for p in subject["props"]}
    assert props["rule-id"] == "cost-center"
    assert props["kind"] == "missing"
    assert props["severity"] == "high"
    assert props["region"] == "eu-west-1"
    assert props["account"] == "123456789012"

    # A finding per assessed control: failing ones reach their resources through the
    # observations, passing ones are satisfied; an unassessed control has no finding.
    findings = {f["target"]["target-id"]: f for f in result["findings"]}
    assert set(findings) == {"CC6.1", "CC7.2", oscal.control_token("CC 8.1 (change)"), "Req-2.2"}
    assert findings["CC6.1"]["target"]["status"]["state"] == "not-satisfied"
    assert findings["CC7.2"]["target"]["status"]["state"] == "satisfied"
    related = {r["observation-uuid"] for r in findings["CC6.1"]["related-observations"]}
    assert by_rule["owner-required"]["uuid"] in related
    assert by_rule["cost-center"]["uuid"] in related
    related = {r["observation-uuid"] for r in findings["CC7.2"]["related-observations"]}
    assert not related & {o["uuid"] for o in by_rule.values()}


def test_hostile_strings_validate_and_read_back_as_text():
    hostile = sample.HOSTILE
    summary = sample.summary(
        [
            sample.control(hostile, "fail", rules=[hostile], title=hostile),
            sample.control("  ", "pass", rules=["r"], title="\n"),
            sample.control("1.2.3", "pass", rules=["r"], framework_slug=hostile),
        ],
        organization_name=hostile,
        generated_by=hostile,
    )
    rows = [
        replace(row, rule_id=hostile, resource_arn=f"arn:{hostile}:{n}")
        for n, row in enumerate(sample.failing(3, rules=("x",)))
    ]
    raw = io.BytesIO()
    oscal.write_assessment_results(raw, summary, iter(rows))
    text = raw.getvalue().decode()
    document = json.loads(text)
    assert errors(document) == []
    assert empty_arrays(document) == []
    # Plain strings keep the text (flattened to one line); markup escapes it for Markdown.
    party = document["assessment-results"]["metadata"]["parties"][0]
    assert party["name"] == " ".join(hostile.split())
    title = document["assessment-results"]["metadata"]["title"]
    assert "<script>" not in title and r"\<script\>" in title
    # Every control id became a token, the original is kept beside it.
    result = document["assessment-results"]["results"][0]
    tokens = [c["control-id"] for s in result["reviewed-controls"]["control-selections"]
              for c in s["include-controls"]]  # fmt: skip
    assert len(set(tokens)) == 3
    assert all(t[0].isalpha() or t[0] == "_" for t in tokens)


def test_a_control_of_a_framework_the_scope_omits_is_still_reviewed():
    summary = sample.summary()
    summary = replace(summary, header=replace(
        summary.header, scope=replace(summary.header.scope, frameworks=["soc2"])))  # fmt: skip
    result = write(summary)["assessment-results"]["results"][0]
    selections = result["reviewed-controls"]["control-selections"]
    assert [c["control-id"] for c in selections[-1]["include-controls"]] == ["Req-2.2"]


def test_no_empty_arrays_when_there_is_nothing_to_say():
    """No control, no failing resource, no scope lists: keys are left out, never []."""
    summary = sample.summary([])
    document = write(summary)
    assert errors(document) == []
    assert empty_arrays(document) == []
    result = document["assessment-results"]["results"][0]
    assert "observations" not in result and "findings" not in result
    assert result["reviewed-controls"]["control-selections"][0]["include-all"] == {}
    # A passing-only package still validates and holds no subjects.
    document = write(sample.summary([sample.control("CC1.1", "pass", rules=["r"])]))
    assert errors(document) == [] and empty_arrays(document) == []


def test_the_same_resource_gets_the_same_uuid_in_every_package():
    first = write(sample.summary(package_id="a"), sample.failing(4))
    second = write(sample.summary(package_id="b"), sample.failing(4))

    def subjects(document):
        result = document["assessment-results"]["results"][0]
        return [
            (next(p["value"] for p in s["props"] if p["name"] == "arn"), s["subject-uuid"])
            for o in result["observations"]
            for s in o.get("subjects", [])
        ]

    assert subjects(first) == subjects(second)
    uuids = dict(subjects(first))
    assert len(set(uuids.values())) == len(uuids) == 4  # one uuid per ARN, distinct ARNs apart
    assert oscal.resource_uuid("arn:aws:s3:::b") == oscal.resource_uuid("arn:aws:s3:::b")
    # Package-scoped objects differ between packages, and repeat for the same package.
    assert first["assessment-results"]["uuid"] != second["assessment-results"]["uuid"]
    assert (
        write(sample.summary(package_id="a"))["assessment-results"]["uuid"]
        == (first["assessment-results"]["uuid"])
    )


def test_rows_out_of_rule_order_still_link_every_resource():
    rows = list(sample.failing(2))  # owner, owner, cost, cost
    rows = [rows[0], rows[2], rows[1], rows[3]]
    document = write(failing=iter(rows))
    assert errors(document) == []
    result = document["assessment-results"]["results"][0]
    finding = next(f for f in result["findings"] if f["target"]["target-id"] == "CC6.1")
    related = {r["observation-uuid"] for r in finding["related-observations"]}
    linked = [
        s for o in result["observations"] if o["uuid"] in related for s in o.get("subjects", [])
    ]
    assert len(linked) == 4


def test_times_are_written_in_utc_and_naive_ones_are_refused():
    summary = sample.summary()
    paris = timezone(timedelta(hours=1))
    period = content.Period(start=datetime(2026, 1, 1, 1, tzinfo=paris), end=sample.PERIOD.end)
    header = replace(summary.header, period=period)
    document = write(replace(summary, header=header))
    assert document["assessment-results"]["results"][0]["start"] == "2026-01-01T00:00:00Z"
    naive = replace(period, start=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        write(replace(summary, header=replace(header, period=naive)))


def test_resource_uuid_is_rfc_4122_version_5():
    for arn in ("arn:aws:s3:::bucket", "arn:aws:ec2:eu-west-1:1:instance/ü", ""):
        assert oscal.resource_uuid(arn) == str(uuid.uuid5(oscal._RESOURCE_NS, arn))


class CountingSink(io.RawIOBase):
    """A file that keeps only its size, so the test measures the writer, not the output."""

    def __init__(self):
        self.size = 0

    def writable(self):
        return True

    def write(self, b):
        self.size += len(b)
        return len(b)


def test_two_hundred_thousand_failing_resources_stream_in_little_memory():
    sink = CountingSink()
    tracemalloc.start()
    try:
        oscal.write_assessment_results(sink, sample.summary(), sample.failing(100_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size > 100 * 1024 * 1024  # ~200,000 subjects were written ...
    assert peak < 4 * 1024 * 1024  # ... and the writer never held more than a few MiB
