#!/usr/bin/env python3
"""Verify a TagSense evidence package offline: python verify_package.py PACKAGE.zip --public-key
KEY.pem [--json]

Standard library and `cryptography` only (pip install cryptography): an auditor runs this file
on its own, without the portal, its database or its code. The portal's own command
(`manage.py verify_evidence`) imports this module, so both check exactly the same things:

1. manifest.sig is an Ed25519 signature of manifest.json's exact bytes by the given public key;
   a package signed, or re-signed, with any other key is refused.
2. Every file manifest.json lists is in the ZIP once, with the listed size and SHA-256; no file
   is missing, none is there unlisted (manifest.json and manifest.sig aside), no name appears
   twice or tries to leave the folder it is unpacked in ("../", an absolute path).
3. audit-log.jsonl is the audit chain's segment the manifest describes: its events' seqs follow
   each other from first_seq to last_seq; each event's prev_hash is the hash of the event
   before it; each event's digest is SHA-256 of the previous digest (64 hex characters) and the
   event's canonical form, recomputed here from the row's fields, starting at the manifest's
   prev_digest and ending at its last_digest.

Exit status 0 and "intact" only if all of that holds; 1 and every failure, each naming its file
and what failed, otherwise; 2 when the command line is wrong or the public key unreadable.
Members are read streaming, in chunks: a package of hundreds of megabytes needs little memory.
See docs/evidence.md for what each failure means and what the audit chain proves.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import ipaddress
import json
import multiprocessing
import os
import posixpath
import sys
import zipfile
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "tagsense-evidence/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
AUDIT_LOG_NAME = "audit-log.jsonl"
GENESIS = "0" * 64
CHUNK = 4 << 20
MAX_MANIFEST = 64 << 20  # a manifest lists files, not rows: far below this
MAX_SIGNATURE = 64 << 10
MAX_PROBLEMS_PER_FILE = 50  # then "... and N more": one edit early in a log breaks no more
# What audit.models.AuditEvent.canonical() covers, as an exported row spells it.
ROW_FIELDS = (
    "organization",
    "seq",
    "created_at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "data",
    "ip_address",
    "user_agent",
    "request_id",
    "prev_hash",
    "hash",
    "digest",
)
_ROW_FIELD_SET = frozenset(ROW_FIELDS)
# canonical()'s serialiser, made once: json.dumps(..., sort_keys=True, separators=(",", ":"),
# ensure_ascii=False) spells the same bytes but builds a new encoder for every event. No
# circular check: a value parsed from JSON cannot contain itself.
_CANONICAL_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)
# Distinct addresses normalise_ip() remembers: a log repeats a few addresses a million times,
# and parsing one with ipaddress costs more than the rest of an event's check.
IP_CACHE_SIZE = 1 << 16
# An audit log this large (uncompressed) is checked by one worker process per core, a block of
# whole lines each, while this process decompresses and hashes: parsing and re-serialising a
# million events is most of a verification's time, and each event's checks need only the event
# before it.
PARALLEL_MIN_BYTES = 32 << 20


class UsageError(Exception):
    """The verification could not start (the public key is unreadable): exit status 2."""


@dataclass(frozen=True)
class Failure:
    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


@dataclass
class Result:
    package: str
    key_fingerprint: str
    failures: list[Failure] = field(default_factory=list)
    files_checked: int = 0
    audit_events: int = 0
    organization: str = ""
    package_id: str = ""

    @property
    def intact(self) -> bool:
        return not self.failures

    def fail(self, file: str, problem: str) -> None:
        self.failures.append(Failure(file, problem))

    def as_dict(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "intact": self.intact,
            "key_fingerprint": self.key_fingerprint,
            "organization": self.organization,
            "package_id": self.package_id,
            "files_checked": self.files_checked,
            "audit_events": self.audit_events,
            "failures": [{"file": f.file, "problem": f.problem} for f in self.failures],
        }


# --- the audit chain, as audit.models spells it ------------------------------------------------


def normalise_ip(value: Any) -> str | None:
    """audit.models.normalise_ip: no IPv6 zone, IPv4-mapped IPv6 as plain IPv4. Strings are
    remembered (_normalise_ip_text): the same address is parsed once per log."""
    if isinstance(value, str):
        return _normalise_ip_text(value)
    return _normalise_ip(value)


@functools.lru_cache(maxsize=IP_CACHE_SIZE)
def _normalise_ip_text(value: str) -> str | None:
    return _normalise_ip(value)


def _normalise_ip(value: Any) -> str | None:
    if not value:
        return None
    try:
        address = ipaddress.ip_address(str(value).split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def canonical(row: dict[str, Any]) -> bytes:
    """audit.models.AuditEvent.canonical(), from an exported row's fields (a test checks that
    both agree on real events)."""
    payload = {
        "organization": row["organization"],
        "seq": row["seq"],
        "created_at": row["created_at"],
        "actor": [row["actor_kind"], row["actor_id"], row["actor_label"]],
        "action": row["action"],
        "target": [row["target_type"], row["target_id"], row["target_repr"]],
        "data": row["data"],
        "ip_address": normalise_ip(row["ip_address"]),
        "user_agent": row["user_agent"],
        "request_id": row["request_id"],
        "prev_hash": row["prev_hash"],
    }
    return _CANONICAL_ENCODER.encode(payload).encode()


def chain_digest(prev_digest: str, canonical_bytes: bytes) -> str:
    """audit.models.chain_digest: the keyless chain's link."""
    return hashlib.sha256(prev_digest.encode("ascii") + canonical_bytes).hexdigest()


class SegmentCheck:
    """Follows audit-log.jsonl line by line against the manifest's audit_log facts."""

    def __init__(self, segment: dict[str, Any], deferred: bool = False):
        self.segment = segment
        self.deferred = deferred
        self.first: tuple[Any, Any, Any, Any, bytes] | None = None
        self.before_first = 0
        self.expected_seq = segment.get("first_seq")
        self.prev_hash = str(segment.get("prev_hash", ""))
        self.prev_digest = str(segment.get("prev_digest", ""))
        self.last_seq: Any = None
        self.count = 0
        self.problems: list[str] = []

    def line(self, text: bytes | str, number: int) -> None:
        try:
            row = json.loads(text)
        except ValueError:
            self.problems.append(f"line {number} is not JSON")
            return
        if isinstance(row, dict) and row.keys() >= _ROW_FIELD_SET:
            self.row(row)
            return
        missing = [f for f in ROW_FIELDS if f not in row] if isinstance(row, dict) else ROW_FIELDS
        if missing:
            self.problems.append(f"line {number} is not an audit event: no {', '.join(missing)}")
            return
        self.row(row)

    def row(self, row: dict[str, Any]) -> None:
        self.event(row["seq"], row["prev_hash"], row["hash"], row["digest"], canonical(row))

    def event(
        self, seq: Any, prev_hash: Any, hash_: Any, digest: Any, canonical_bytes: bytes
    ) -> None:
        """One event's checks against the one before it, then it becomes the one before."""
        if self.deferred and self.first is None:
            # A block's first event: the event before it is in the block before, checked by
            # the process that follows the whole log (merge()).
            self.first = (seq, prev_hash, hash_, digest, canonical_bytes)
            self.before_first = len(self.problems)
        else:
            self._check_event(seq, prev_hash, digest, canonical_bytes)
        self.prev_hash, self.prev_digest = str(hash_), str(digest)
        self.expected_seq = seq + 1 if isinstance(seq, int) else None
        self.last_seq = seq
        self.count += 1

    def _check_event(self, seq: Any, prev_hash: Any, digest: Any, canonical_bytes: bytes) -> None:
        wrong = []
        if seq != self.expected_seq:
            wrong.append(f"expected seq {self.expected_seq}: events missing or reordered")
        if prev_hash != self.prev_hash:
            wrong.append("its prev_hash is not the hash of the event before it")
        if chain_digest(self.prev_digest, canonical_bytes) != digest:
            wrong.append(
                "its digest does not match its content and the digest before it: "
                "the event was edited, or one before it removed"
            )
        if wrong:
            self.problems.append(f"chain break at seq {seq}: " + "; ".join(wrong))

    def merge(self, block: BlockResult) -> None:
        """A block's result (_check_block), in the log's order: its first event checked
        against the last one before it, the rest as the block found them."""
        problems, before_first, first, count, state = block
        self.problems += problems[:before_first]
        if first is not None:
            self.event(*first)
            self.problems += problems[before_first:]
            self.prev_hash, self.prev_digest, self.expected_seq, self.last_seq = state
            self.count += count - 1

    def finish(self) -> list[str]:
        segment, problems = self.segment, list(self.problems)
        if self.count != segment.get("events"):
            problems.append(f"holds {self.count} events, the manifest says {segment.get('events')}")
        if self.count and self.last_seq != segment.get("last_seq"):
            problems.append(
                f"ends at seq {self.last_seq}, the manifest says {segment.get('last_seq')}"
            )
        if self.prev_digest != segment.get("last_digest"):
            problems.append(
                "chain break at the end: the last digest is not the manifest's last_digest "
                f"({segment.get('last_digest')})"
            )
        if self.prev_hash != segment.get("last_hash"):
            problems.append("chain break at the end: the last hash is not the manifest's last_hash")
        return problems


# A block's problems, how many came before its first event, that event (seq, prev_hash, hash,
# digest, canonical bytes), its events, and the state after its last: (prev_hash, prev_digest,
# expected_seq, last_seq).
BlockResult = tuple[
    list[str], int, tuple[Any, Any, Any, Any, bytes] | None, int, tuple[str, str, Any, Any]
]


def _check_block(block: bytes, number: int) -> BlockResult:
    """A worker's share: the whole lines of `block`, numbered after `number`, checked as
    SegmentCheck checks them, except the first event's links (merge() checks them)."""
    check = SegmentCheck({}, deferred=True)
    _feed_lines(check, block, number)
    if check.first is None:
        check.before_first = len(check.problems)
    state = (check.prev_hash, check.prev_digest, check.expected_seq, check.last_seq)
    return check.problems, check.before_first, check.first, check.count, state


# --- the package -------------------------------------------------------------------------------


def fingerprint(public_key_raw: bytes) -> str:
    """evidence.keys.fingerprint: "SHA256:" + unpadded base64 of SHA-256 of the raw key."""
    digest = hashlib.sha256(public_key_raw).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def load_public_key(pem: bytes) -> tuple[Ed25519PublicKey, str]:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) and its fingerprint."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise UsageError(f"the public key is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError("the public key is not an Ed25519 key")
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, fingerprint(raw)


def unsafe_name(name: str) -> str:
    """Why a member's name must not be unpacked as it is (empty: it is a plain relative
    name). evidence.manifest.check_member_name refuses the same when a package is built."""
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or ":" in parts[0]:
        return "an absolute path"
    if any(part == ".." for part in parts):
        return 'a path leaving the folder ("..")'
    if not name or any(part in ("", ".") for part in parts) or posixpath.normpath(name) != name:
        return "not a plain relative file name"
    if any(ord(c) < 32 for c in name):
        return "a control character in its name"
    return ""


def _read_small(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    with archive.open(name) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit} bytes")
    return data


def _hash_member(member: IO[bytes], segment: SegmentCheck | None) -> tuple[int, str]:
    """Size and SHA-256 of one member, read in chunks; its lines fed to `segment` as they
    pass (audit-log.jsonl is read once)."""
    sha, size, pending, number = hashlib.sha256(), 0, b"", 0
    while chunk := member.read(CHUNK):
        sha.update(chunk)
        size += len(chunk)
        if segment is not None:
            whole, _, pending = (pending + chunk).rpartition(b"\n")
            if whole or _:
                number = _feed_lines(segment, whole, number)
    if segment is not None and pending.strip():
        segment.line(pending, number + 1)
    return size, sha.hexdigest()


def _hash_member_parallel(
    member: IO[bytes], segment: SegmentCheck, pool: Any, jobs: int
) -> tuple[int, str]:
    """_hash_member with the lines checked by the `jobs` workers of `pool`, a block of whole
    lines each, merged in order; at most two blocks per worker in flight (memory stays
    flat)."""
    sha, size, pending, number = hashlib.sha256(), 0, b"", 0
    in_flight: deque[Any] = deque()
    while chunk := member.read(CHUNK):
        sha.update(chunk)
        size += len(chunk)
        whole, newline, pending = (pending + chunk).rpartition(b"\n")
        if whole or newline:
            in_flight.append(pool.apply_async(_check_block, (whole, number)))
            number += whole.count(b"\n") + 1
        while len(in_flight) > 2 * jobs:
            segment.merge(in_flight.popleft().get())
    while in_flight:
        segment.merge(in_flight.popleft().get())
    if pending.strip():
        segment.line(pending, number + 1)
    return size, sha.hexdigest()


def _member_digest(path: str, name: str) -> tuple[int, str] | str:
    """A worker's share: size and SHA-256 of the member `name` of the package at `path`, or
    why it cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(name) as member:
            return _hash_member(member, None)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        return f"unreadable, the ZIP is damaged: {exc}"


def _jobs(requested: int | None, size: int) -> int:
    """Worker processes for an audit log of `size` bytes: one per core (or `requested`) when
    it is large and fork is available, else none (1: this process)."""
    if size < PARALLEL_MIN_BYTES or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, requested if requested is not None else (os.cpu_count() or 1))


def _feed_lines(segment: SegmentCheck, block: bytes, number: int) -> int:
    """Every line of `block` (whole lines, the last one's newline cut) to `segment`, numbered
    after `number`; the last number given. The block is decoded once, not line by line; a
    block that is not UTF-8 goes line by line, so that only its bad lines are "not JSON"."""
    try:
        lines: list[str] | list[bytes] = block.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        lines = block.split(b"\n")
    line = segment.line
    for text in lines:
        number += 1
        line(text, number)
    return number


def _check_signature(
    result: Result, archive: zipfile.ZipFile, key: Ed25519PublicKey
) -> bytes | None:
    """manifest.json's bytes, after checking manifest.sig against `key` (failures recorded)."""
    try:
        manifest = _read_small(archive, MANIFEST_NAME, MAX_MANIFEST)
    except (ValueError, zipfile.BadZipFile, zlib.error, OSError) as exc:
        result.fail(MANIFEST_NAME, f"unreadable: {exc}")
        return None
    try:
        document = json.loads(_read_small(archive, SIGNATURE_NAME, MAX_SIGNATURE))
        signed_by = document["key_fingerprint"]
        signature = base64.b64decode(document["signature"], validate=True)
        algorithm = document["algorithm"]
    except (ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error, OSError) as exc:
        result.fail(SIGNATURE_NAME, f"bad signature: not a signature document ({exc})")
        return manifest
    if algorithm != "Ed25519":
        result.fail(SIGNATURE_NAME, f"bad signature: algorithm {algorithm!r}, not Ed25519")
    elif signed_by != result.key_fingerprint:
        result.fail(
            SIGNATURE_NAME,
            f"bad signature: made with key {signed_by}, not the given key "
            f"{result.key_fingerprint} (re-signed with another key)",
        )
    else:
        try:
            key.verify(signature, manifest)
        except InvalidSignature:
            result.fail(
                MANIFEST_NAME,
                "bad signature: manifest.sig is not the given key's signature of these bytes "
                "(manifest.json or manifest.sig was changed after signing)",
            )
    return manifest


def _parse_manifest(result: Result, manifest: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(manifest)
    except ValueError:
        result.fail(MANIFEST_NAME, "not JSON")
        return None
    if not isinstance(parsed, dict) or parsed.get("format") != FORMAT:
        result.fail(MANIFEST_NAME, f"not a {FORMAT} manifest")
        return None
    named = (parsed.get("signing_key") or {}).get("fingerprint")
    if named != result.key_fingerprint:
        result.fail(
            MANIFEST_NAME,
            f"names signing key {named}, not the given key {result.key_fingerprint}",
        )
    result.organization = str((parsed.get("organization") or {}).get("slug", ""))
    result.package_id = str(parsed.get("package_id", ""))
    return parsed


def _listed_files(result: Result, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    listed: dict[str, dict[str, Any]] = {}
    files = manifest.get("files")
    if not isinstance(files, list):
        result.fail(MANIFEST_NAME, "lists no files")
        return listed
    for entry in files:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            result.fail(MANIFEST_NAME, f"a file entry without a name: {entry!r}")
        elif why := unsafe_name(name):
            result.fail(name, f"listed in the manifest under {why}")
        elif name in listed:
            result.fail(name, "listed twice in the manifest")
        else:
            listed[name] = entry
    return listed


def _check_members(
    result: Result,
    archive: zipfile.ZipFile,
    listed: dict[str, dict[str, Any]],
    segment: SegmentCheck | None,
    jobs: int | None = None,
) -> None:
    """Every listed member's size and SHA-256 against the manifest, audit-log.jsonl's lines
    against `segment` as it is read. With a large audit log (_jobs), worker processes check its
    lines and hash the other members meanwhile, each opening the package by its path."""
    present = {info.filename: info for info in archive.infolist()}
    names = [name for name in listed if name in present]
    outcomes: dict[str, tuple[int, str] | str] = {}
    log = AUDIT_LOG_NAME if segment is not None and AUDIT_LOG_NAME in names else None
    workers = _jobs(jobs, present[log].file_size) if log is not None else 1
    if log is not None and segment is not None and workers > 1 and archive.filename:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            others = {
                name: pool.apply_async(_member_digest, (archive.filename, name))
                for name in names
                if name != log
            }
            outcomes[log] = _read_member(
                archive, log, lambda m: _hash_member_parallel(m, segment, pool, workers)
            )
            outcomes.update((name, job.get()) for name, job in others.items())
    else:
        for name in names:
            outcomes[name] = _read_member(
                archive, name, functools.partial(_fed, segment if name == log else None)
            )
    for name, entry in listed.items():
        outcome = outcomes.get(name)
        if outcome is None:
            result.fail(name, "missing: listed in the manifest, not in the package")
            continue
        if isinstance(outcome, str):
            result.fail(name, outcome)
            continue
        size, sha256 = outcome
        result.files_checked += 1
        if size != entry.get("size"):
            result.fail(name, f"size {size} bytes, the manifest says {entry.get('size')}")
        if sha256 != entry.get("sha256"):
            result.fail(
                name, f"SHA-256 mismatch: {sha256}, the manifest says {entry.get('sha256')}"
            )
    for name in sorted(present.keys() - set(listed) - {MANIFEST_NAME, SIGNATURE_NAME}):
        result.fail(name, "unexpected: in the package, not listed in the manifest")


def _fed(segment: SegmentCheck | None, member: IO[bytes]) -> tuple[int, str]:
    return _hash_member(member, segment)


def _read_member(
    archive: zipfile.ZipFile, name: str, read: Callable[[IO[bytes]], tuple[int, str]]
) -> tuple[int, str] | str:
    """read(member) of one member: its size and SHA-256, or why it cannot be read."""
    try:
        with archive.open(name) as member:
            return read(member)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        return f"unreadable, the ZIP is damaged: {exc}"


def _check_audit_log(
    result: Result, manifest: dict[str, Any], listed: dict[str, dict[str, Any]]
) -> SegmentCheck | None:
    segment = manifest.get("audit_log")
    if not isinstance(segment, dict) or segment.get("file") != AUDIT_LOG_NAME:
        result.fail(MANIFEST_NAME, f"describes no audit segment in {AUDIT_LOG_NAME}")
        return None
    if AUDIT_LOG_NAME not in listed:
        result.fail(AUDIT_LOG_NAME, "not listed in the manifest")
        return None
    return SegmentCheck(segment)


def _check_head(result: Result, manifest: dict[str, Any]) -> None:
    """The chain's head at export time is at or after the segment's end, and is its end when
    they share a seq."""
    head, segment = manifest.get("chain_head") or {}, manifest.get("audit_log") or {}
    last_seq = segment.get("last_seq")
    if not isinstance(head.get("seq"), int) or (
        isinstance(last_seq, int) and head["seq"] < last_seq
    ):
        result.fail(MANIFEST_NAME, "its chain head is before the end of its audit segment")
    elif head.get("seq") == last_seq and head.get("digest") != segment.get("last_digest"):
        result.fail(MANIFEST_NAME, "its chain head is not the end of its audit segment")


def _check_names(result: Result, archive: zipfile.ZipFile) -> bool:
    """Every member name once and plain; False when manifest.json or manifest.sig is missing."""
    counts = Counter(info.filename for info in archive.infolist())
    for name, count in sorted(counts.items()):
        if count > 1:
            result.fail(name, f"duplicate: {count} members under this name")
        if why := unsafe_name(name):
            result.fail(name, f"unsafe member name: {why}")
    for name in (MANIFEST_NAME, SIGNATURE_NAME):
        if name not in counts:
            result.fail(name, "missing: a package without it cannot be verified")
    return MANIFEST_NAME in counts and SIGNATURE_NAME in counts


def verify_package(path: str, public_key_pem: bytes, jobs: int | None = None) -> Result:
    """Every check of the module docstring; the failures in the result, none when intact.
    UsageError when the public key is unreadable. `jobs`: worker processes for a large audit
    log (default one per core; 1 checks it in this process)."""
    key, key_fingerprint = load_public_key(public_key_pem)
    result = Result(package=str(path), key_fingerprint=key_fingerprint)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        result.fail(str(path), f"not a readable ZIP file: {exc}")
        return result
    with archive:
        if not _check_names(result, archive):
            return result
        manifest_bytes = _check_signature(result, archive, key)
        manifest = _parse_manifest(result, manifest_bytes) if manifest_bytes else None
        if manifest is None:
            return result
        listed = _listed_files(result, manifest)
        segment = _check_audit_log(result, manifest, listed)
        _check_head(result, manifest)
        _check_members(result, archive, listed, segment, jobs)
    if segment is not None:
        result.audit_events = segment.count
        problems = segment.finish()
        for problem in problems[:MAX_PROBLEMS_PER_FILE]:
            result.fail(AUDIT_LOG_NAME, problem)
        if len(problems) > MAX_PROBLEMS_PER_FILE:
            result.fail(AUDIT_LOG_NAME, f"... and {len(problems) - MAX_PROBLEMS_PER_FILE} more")
    return result


def render(result: Result) -> str:
    """The text a person reads: "intact" and what was checked, or every failure."""
    if result.intact:
        return (
            f"intact: {result.package}: {result.files_checked} files and "
            f"{result.audit_events} audit events checked, signed by {result.key_fingerprint}"
            f" (organization {result.organization}, package {result.package_id})"
        )
    lines = [f"NOT INTACT: {result.package}: {len(result.failures)} failure(s)"]
    lines += [f"  FAIL {failure}" for failure in result.failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Verify a TagSense evidence package offline (docs/evidence.md)."
    )
    parser.add_argument("package", help="the evidence package (.zip)")
    parser.add_argument(
        "--public-key",
        required=True,
        metavar="KEY.pem",
        help="the organization's evidence public key (PEM), its fingerprint confirmed out of band",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="processes checking a large audit log (default: one per core; 1: no others)",
    )
    args = parser.parse_args(argv)
    try:
        with open(args.public_key, "rb") as handle:
            pem = handle.read(MAX_SIGNATURE)
        result = verify_package(args.package, pem, args.jobs)
    except (OSError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict(), indent=2) if args.json else render(result))
    return 0 if result.intact else 1


if __name__ == "__main__":
    sys.exit(main())
