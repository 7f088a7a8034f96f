"""The standalone verifier's fast paths (one encoder made once, addresses normalised once per
log, each block of audit-log.jsonl decoded at once) check exactly what the slow spelling
checked: canonical() is byte for byte the model's on awkward values, and a log split into
chunks anywhere, even inside a character, verifies the same as read whole."""

import io
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.exports import EXPORT_COLUMNS, exported, jsonl_line
from audit.models import GENESIS_DIGEST, GENESIS_HASH, AuditEvent
from evidence import verify_package as standalone

AWKWARD_IPS = (
    None,
    "",
    "203.0.113.7",
    "2001:db8::1",
    "2001:DB8:0:0:0:0:0:1",
    "fe80::1%eth0",
    "::ffff:192.0.2.1",
    "::ffff:c000:201",
    "::",
    "not an address",
    "010.0.0.1",
)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["", "\u2028", "\u2029", "\x00", "\\", '"', "ü", "😀", "\n\r\t", "</script>", "1e400"]
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
EVENTS = st.builds(
    AuditEvent,
    organization_id=st.integers(min_value=1, max_value=10**9),
    seq=st.integers(min_value=1, max_value=10**12),
    created_at=st.datetimes(timezones=st.just(UTC), min_value=datetime(2000, 1, 1)),
    actor_kind=st.sampled_from(["user", "system", "api_token"]),
    actor_id=TEXT,
    actor_label=TEXT,
    action=TEXT,
    target_type=TEXT,
    target_id=TEXT,
    target_repr=TEXT,
    data=JSON_VALUES,
    ip_address=st.sampled_from(AWKWARD_IPS) | st.ip_addresses().map(str),
    user_agent=TEXT,
    request_id=TEXT,
    prev_hash=st.sampled_from([GENESIS_HASH, "f" * 64]),
    hash=st.just("a" * 64),
    digest=st.just("b" * 64),
)


def _row(event):
    """An event as the auditor reads it: exported, one JSON Lines record, parsed."""
    return json.loads(jsonl_line(exported(event)))


def test_the_standalone_script_reads_the_fields_every_export_writes():
    """The script cannot import the portal (an auditor runs it alone), so it spells the audit
    row's fields itself: they must stay the ones audit.exports writes, in the same order."""
    assert standalone.ROW_FIELDS == EXPORT_COLUMNS


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=EVENTS)
def test_the_standalone_canonical_form_is_the_models_on_awkward_values(event):
    expected = event.canonical()
    assert standalone.canonical(_row(event)) == expected
    # Asked twice, as a log repeats addresses: the remembered answer is the same.
    assert standalone.canonical(_row(event)) == expected


def _segment_bytes(events, ensure_ascii):
    """A valid segment of `events` (seqs, hashes and digests linked) as audit-log.jsonl bytes,
    and the manifest's audit_log facts for it."""
    prev_hash, prev_digest, lines = GENESIS_HASH, GENESIS_DIGEST, []
    for seq, event in enumerate(events, start=1):
        event.seq, event.prev_hash = seq, prev_hash
        event.hash = f"{seq:064x}"
        event.digest = standalone.chain_digest(prev_digest, event.canonical())
        prev_hash, prev_digest = event.hash, event.digest
        lines.append(json.dumps(exported(event), sort_keys=True, ensure_ascii=ensure_ascii))
    segment = {
        "events": len(events),
        "first_seq": 1,
        "last_seq": len(events),
        "prev_hash": GENESIS_HASH,
        "prev_digest": GENESIS_DIGEST,
        "last_hash": prev_hash,
        "last_digest": prev_digest,
    }
    return ("\n".join(lines) + "\n").encode(), segment


def _check(data, segment, chunk, monkeypatch):
    monkeypatch.setattr(standalone, "CHUNK", chunk)
    check = standalone.SegmentCheck(segment)
    size, sha256 = standalone._hash_member(io.BytesIO(data), check)
    return size, sha256, check.count, check.finish()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
    HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    events=st.lists(EVENTS, min_size=1, max_size=6),
    ensure_ascii=st.booleans(),
    chunk=st.integers(min_value=1, max_value=300),
)
def test_a_log_read_in_chunks_of_any_size_verifies_as_read_whole(
    events, ensure_ascii, chunk, monkeypatch
):
    data, segment = _segment_bytes(events, ensure_ascii)
    whole = _check(data, segment, len(data) + 1, monkeypatch)
    assert whole[2:] == (len(events), [])
    assert _check(data, segment, chunk, monkeypatch) == whole


def test_a_line_that_is_not_utf8_fails_alone_and_the_rest_still_verify(monkeypatch):
    events = [
        AuditEvent(
            organization_id=1,
            created_at=datetime(2026, 3, 1, tzinfo=UTC),
            actor_kind="user",
            actor_id="1",
            actor_label="ü@example.com",
            action="team.delete",
            target_type="team",
            target_id=str(i),
            target_repr="Équipe 😀",
            data={"n": i},
            ip_address="::ffff:192.0.2.1",
            user_agent="ua",
            request_id=f"r{i}",
        )
        for i in range(4)
    ]
    data, segment = _segment_bytes(events, ensure_ascii=False)
    lines = data.split(b"\n")
    lines[2] = lines[2].replace("Équipe".encode(), b"\xc9quipe")  # Latin-1, not UTF-8
    for chunk in (5, 64, 1 << 20):
        _, _, count, problems = _check(b"\n".join(lines), segment, chunk, monkeypatch)
        assert problems[0] == "line 3 is not JSON", chunk
        assert count == 3
        assert problems[1].startswith("chain break at seq 4: ")
        assert "prev_hash" in problems[1] and "digest" in problems[1]


def _events(count):
    return [
        AuditEvent(
            organization_id=1,
            created_at=datetime(2026, 3, 1, tzinfo=UTC),
            actor_kind="user",
            actor_id=str(i % 3),
            actor_label="ü@example.com",
            action="team.delete",
            target_type="team",
            target_id=str(i),
            target_repr=f"Équipe {i} 😀",
            data={"n": i, "l": [None, 1.5, "\u2028"]},
            ip_address=("2001:DB8::1", "::ffff:192.0.2.1", "203.0.113.7")[i % 3],
            user_agent="ua",
            request_id=f"r{i}",
        )
        for i in range(count)
    ]


def _tampered(lines, how):
    lines = list(lines)
    if how == "edited":
        lines[7] = lines[7].replace(b'"r7"', b'"r8"')
    elif how == "removed":
        del lines[12]
    elif how == "duplicated":
        lines.insert(5, lines[4])
    elif how == "garbage":
        lines[3:6] = [b"not json", b"[1, 2]", b"\xc9t\xe9"]
    elif how == "blank lines":
        lines[1:1] = [b"", b"  "]
    elif how == "reordered":
        lines[9], lines[10] = lines[10], lines[9]
    return b"\n".join(lines)


def _parallel(data, segment, chunk, monkeypatch):
    monkeypatch.setattr(standalone, "CHUNK", chunk)
    check = standalone.SegmentCheck(segment)
    with standalone.multiprocessing.get_context("fork").Pool(2) as pool:
        size, sha256 = standalone._hash_member_parallel(io.BytesIO(data), check, pool, 2)
    return size, sha256, check.count, check.finish()


@pytest.mark.parametrize(
    "how", ["intact", "edited", "removed", "duplicated", "garbage", "blank lines", "reordered"]
)
def test_worker_processes_find_what_one_process_finds_in_the_same_order(how, monkeypatch):
    data, segment = _segment_bytes(_events(24), ensure_ascii=False)
    data = _tampered(data.split(b"\n"), how)
    alone = _check(data, segment, 1 << 20, monkeypatch)
    assert (alone[3] == []) == (how == "intact")
    # Blocks of one line, of a part of a line, of several lines with the tampering on a border.
    for chunk in (7, 100, 333, 1500):
        assert _parallel(data, segment, chunk, monkeypatch) == alone, chunk


def test_a_large_audit_log_is_checked_by_worker_processes(monkeypatch):
    """verify_package picks the workers by the log's size; the CLI's --jobs 1 keeps it here."""
    assert standalone._jobs(None, standalone.PARALLEL_MIN_BYTES - 1) == 1
    assert standalone._jobs(1, standalone.PARALLEL_MIN_BYTES) == 1
    assert standalone._jobs(3, standalone.PARALLEL_MIN_BYTES) == 3
