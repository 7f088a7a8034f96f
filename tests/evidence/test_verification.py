"""An evidence package verifies offline (issue 16, item 3): the standalone script (run as an
auditor runs it, with nothing of Django or TagSense importable) and manage.py verify_evidence
say "intact" for a package as built, and for every kind of tampering exit non-zero naming the
file and what failed."""

import json
import zipfile

import pytest

from evidence import keys
from evidence import verify_package as standalone
from evidence.manifest import AUDIT_LOG_NAME
from tagsense.tenancy.db import tenant_scope
from tests.evidence.package_kit import (
    both_fail,
    build,
    flip,
    public_key_file,
    record_events,
    rezip,
    run_command,
    run_script,
    with_members,
    write,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def package(org, tmp_path):
    record_events(org, 6)
    return build(org, tmp_path / "acme-evidence.zip")


@pytest.fixture
def org_key(org, package, tmp_path):
    return public_key_file(org, tmp_path)


def test_an_untouched_package_is_intact_for_the_script_and_the_command(package, org_key, tmp_path):
    script = run_script(package.path, org_key, tmp_path)
    assert script.returncode == 0, script.stdout + script.stderr
    assert script.stdout.startswith("intact:")
    assert "3 files and 6 audit events" in script.stdout
    assert package.key.fingerprint in script.stdout
    code, text = run_command(package.path, "--public-key", str(org_key))
    assert code == 0 and "intact:" in text
    code, text = run_command(package.path)  # the key from the database, said so
    assert code == 0 and "intact:" in text
    assert f"Using acme's published evidence key {package.key.fingerprint}" in text
    as_json = json.loads(run_script(package.path, org_key, tmp_path, "--json").stdout)
    assert as_json["intact"] is True and as_json["failures"] == []
    assert as_json["audit_events"] == 6 and as_json["files_checked"] == 3


def test_the_segment_holds_the_periods_events_and_its_ends(org, package):
    lines = package.members[AUDIT_LOG_NAME].decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["seq"] for r in rows] == list(range(1, 7))
    assert package.segment["events"] == 6
    assert package.segment["prev_digest"] == "0" * 64 and package.segment["prev_hash"] == "0" * 64
    assert package.segment["last_digest"] == rows[-1]["digest"]
    assert package.head == {"seq": 6, "hash": rows[-1]["hash"], "digest": rows[-1]["digest"]}
    assert rows[0]["ip_address"] == "2001:db8::7" and rows[1]["ip_address"] == "10.1.2.3"


def test_one_byte_changed_in_any_member_fails_naming_it(package, org_key, tmp_path):
    with zipfile.ZipFile(package.path) as archive:
        names = archive.namelist()
    assert set(names) == {*package.members, "manifest.json", "manifest.sig"}
    for name in names:
        changed = rezip(
            package.path,
            tmp_path / "changed.zip",
            lambda n, data, name=name: (n, flip(data) if n == name else data),
        )
        both_fail(changed, org_key, tmp_path, name)
        if name not in ("manifest.json", "manifest.sig"):
            out = run_script(changed, org_key, tmp_path).stdout
            assert f"FAIL {name}: SHA-256 mismatch" in out


def test_a_byte_flipped_in_the_zip_itself_names_the_damaged_member(package, org_key, tmp_path):
    raw = bytearray(package.path.read_bytes())
    with zipfile.ZipFile(package.path) as archive:
        info = archive.getinfo("controls.csv")
    # The member's data starts after its local header (30 bytes, its name, its extra field).
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0x01
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(raw))
    both_fail(damaged, org_key, tmp_path, "controls.csv")


def test_a_member_removed_added_or_renamed_is_named(package, org_key, tmp_path):
    removed = rezip(
        package.path, tmp_path / "removed.zip", lambda n, d: None if n == "controls.csv" else (n, d)
    )
    both_fail(removed, org_key, tmp_path, "controls.csv: missing")
    added = write(package, extra={"notes.txt": b"added later"})
    both_fail(added, org_key, tmp_path, "notes.txt: unexpected")
    renamed = rezip(
        package.path,
        tmp_path / "renamed.zip",
        lambda n, d: ("controls-v2.csv" if n == "controls.csv" else n, d),
    )
    both_fail(renamed, org_key, tmp_path, "controls.csv: missing", "controls-v2.csv: unexpected")


def test_path_tricks_and_duplicate_names_are_refused(package, org_key, tmp_path):
    for trick in ("../escape.txt", "/etc/cron.d/x", "findings/../../x"):
        tricked = write(package, extra={trick: b"x"})
        out = run_script(tricked, org_key, tmp_path).stdout
        assert f"FAIL {trick}: unsafe member name" in out, out
    write(package)
    with zipfile.ZipFile(package.path, "a") as archive, pytest.warns(UserWarning, match="Dup"):
        archive.writestr("controls.csv", b"framework,control,status\nsoc2,CC6.1,fail\n")
    out = run_script(package.path, org_key, tmp_path).stdout
    assert "FAIL controls.csv: duplicate: 2 members" in out


def test_a_package_re_signed_with_another_key_is_refused(package, org_key, other_org, tmp_path):
    resigned = write(package, signer=other_org)  # the manifest re-made naming their key
    script = run_script(resigned, org_key, tmp_path)
    assert script.returncode == 1
    assert "FAIL manifest.sig: bad signature: made with key" in script.stdout
    assert "re-signed with another key" in script.stdout
    code, text = run_command(resigned, "--public-key", str(org_key))
    assert code == 1 and "re-signed with another key" in text
    # From the database: their key is not one of acme's published keys.
    code, text = run_command(resigned)
    assert code == 1 and "not one of acme's published evidence keys" in text
    assert "intact" not in text


def _audit_rows(package):
    return package.members[AUDIT_LOG_NAME].decode().splitlines(keepends=True)


def _re_signed_with_log(package, tmp_path, lines):
    """The package with another audit log, its file hash and manifest re-made and re-signed
    with the organization's own key: only the chain check can tell."""
    members = {**package.members, AUDIT_LOG_NAME: "".join(lines).encode()}
    return with_members(package, tmp_path / "relogged.zip", members).path


def test_an_audit_event_edited_is_a_chain_break_at_its_seq(package, org_key, tmp_path):
    lines = _audit_rows(package)
    row = json.loads(lines[2])
    row["data"]["name"] = "a team nobody created"
    lines[2] = json.dumps(row, sort_keys=True) + "\n"
    path = _re_signed_with_log(package, tmp_path, lines)
    out = both_fail(path, org_key, tmp_path, "audit-log.jsonl: chain break at seq 3")
    assert "SHA-256 mismatch" not in out and "bad signature" not in out  # only the chain
    # The same edit with the row's digest recomputed breaks the link of the next event.
    row["digest"] = "f" * 64
    lines[2] = json.dumps(row, sort_keys=True) + "\n"
    path = _re_signed_with_log(package, tmp_path, lines)
    both_fail(path, org_key, tmp_path, "chain break at seq 3", "chain break at seq 4")


def test_an_audit_event_removed_or_events_reordered_are_chain_breaks(package, org_key, tmp_path):
    lines = _audit_rows(package)
    removed = _re_signed_with_log(package, tmp_path, lines[:3] + lines[4:])
    both_fail(removed, org_key, tmp_path, "audit-log.jsonl: chain break at seq 5")
    swapped = lines[:2] + [lines[3], lines[2]] + lines[4:]
    reordered = _re_signed_with_log(package, tmp_path, swapped)
    out = both_fail(reordered, org_key, tmp_path, "audit-log.jsonl: chain break at seq 4")
    assert "expected seq 3" in out


def test_an_old_package_still_verifies_after_rotation(org, package, org_key, tmp_path):
    old_fingerprint = package.key.fingerprint
    with tenant_scope(org):
        new_key = keys.rotate(org)
    assert new_key.fingerprint != old_fingerprint
    script = run_script(package.path, org_key, tmp_path)  # the retired key's PEM
    assert script.returncode == 0 and script.stdout.startswith("intact:")
    code, text = run_command(package.path)
    assert code == 0 and old_fingerprint in text and "retired" in text
    # The new key does not verify the old package: the script says which key signed it.
    new_pem = public_key_file(org, tmp_path, new_key)
    refused = run_script(package.path, new_pem, tmp_path)
    assert refused.returncode == 1 and old_fingerprint in refused.stdout


def test_an_unreadable_key_or_a_file_that_is_no_zip(package, tmp_path):
    bad_key = tmp_path / "bad.pem"
    bad_key.write_text("not a key")
    result = run_script(package.path, bad_key, tmp_path)
    assert result.returncode == 2 and "not a PEM public key" in result.stderr
    not_zip = tmp_path / "not.zip"
    not_zip.write_bytes(b"PK\x03\x04 but no zip")
    key = public_key_file(package.organization, tmp_path)
    result = run_script(not_zip, key, tmp_path)
    assert result.returncode == 1 and "not a readable ZIP file" in result.stdout


def test_worker_processes_find_what_one_process_finds_for_every_tampering(
    package, org_key, tmp_path, monkeypatch
):
    """With a large audit log the standalone verifier checks its lines and hashes the other
    members in worker processes (each opening the package by its path): for the package as
    built and for each tampering, the same verdict and failures, in the same order, as one
    process gives."""
    monkeypatch.setattr(standalone, "PARALLEL_MIN_BYTES", 0)
    pem = org_key.read_bytes()
    raw = bytearray(package.path.read_bytes())
    with zipfile.ZipFile(package.path) as archive:
        info = archive.getinfo("controls.csv")
    raw[info.header_offset + 30 + len(info.filename) + len(info.extra) + 5] ^= 0x01
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(raw))
    lines = package.members[AUDIT_LOG_NAME].split(b"\n")
    lines[2] = lines[2].replace(b'"seq":3', b'"seq":3,"note":1')
    cases = {
        "intact": package.path,
        "flipped": rezip(
            package.path,
            tmp_path / "flipped.zip",
            lambda n, d: (n, flip(d) if n == "controls.csv" else d),
        ),
        "damaged": damaged,
        "removed": rezip(
            package.path,
            tmp_path / "removed.zip",
            lambda n, d: None if n == "controls.csv" else (n, d),
        ),
        "edited event": rezip(
            package.path,
            tmp_path / "edited.zip",
            lambda n, d: (n, b"\n".join(lines) if n == AUDIT_LOG_NAME else d),
        ),
    }
    for how, path in cases.items():
        alone = standalone.verify_package(str(path), pem, jobs=1)
        workers = standalone.verify_package(str(path), pem, jobs=2)
        assert (alone.intact, alone.failures, alone.files_checked) == (
            workers.intact,
            workers.failures,
            workers.files_checked,
        ), how
        assert alone.intact == (how == "intact"), (how, alone.failures)
