"""A small real evidence package, built the way the package builder builds one: real audit
events exported by audit.exports.write_chain_segment, a few files, manifest.json and
manifest.sig from evidence.manifest with the organization's key; and the means to tamper
with it (re-zip a member changed, removed, added, renamed; re-make and re-sign the manifest)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

import audit
from accounts import audit_events as accounts_events
from audit.exports import chain_head, write_chain_segment
from evidence import content, keys
from evidence.manifest import AUDIT_LOG_NAME, manifest_bytes, signature_bytes
from tagsense.tenancy import context
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "evidence" / "verify_package.py"
# The standalone run: the script copied out of the repository, isolated mode (no PYTHONPATH, no
# script directory, no user site), and every import refused but the standard library's and
# cryptography's, so any use of Django or TagSense fails the run.
BLOCKER = """
import runpy, sys
allowed = set(sys.stdlib_module_names) | {"cryptography", "_cffi_backend", "_openssl"}
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in allowed:
            raise ImportError("the standalone verifier imported " + name)
        return None
sys.meta_path.insert(0, Blocker())
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def record_events(organization, n: int = 4) -> None:
    """Real events, with what canonical() must spell exactly: non-ASCII text, nulls, an IPv6
    address (zoned, IPv4-mapped), nested data."""
    sources = ["2001:db8::7%eth0", "::ffff:10.1.2.3", "192.0.2.9", None]
    with tenant_scope(organization):
        for i in range(n):
            with context.use(
                ip_address=sources[i % len(sources)],
                user_agent="Mozilla/5.0 (Ünïcödé; 日本語)",
                request_id=f"req-{i}",
            ):
                audit.record(
                    accounts_events.TEAM_CREATE,
                    target=("team", str(i), f"Équipe «{i}»"),
                    actor=Actor(Actor.USER, "7", "ana@acme.example"),
                    data={"name": f"team {i} – ✓", "none": None, "n": [1, None, {"b": "x"}]},
                )


@dataclass
class Package:
    organization: object
    header: content.Header
    members: dict[str, bytes]  # every file but manifest.json and manifest.sig
    segment: dict
    head: dict
    key: object  # the EvidenceKey that signed it
    path: Path


def _header(organization) -> content.Header:
    now = timezone.now()
    return content.Header(
        package_id=str(uuid.uuid4()),
        organization_slug=organization.slug,
        organization_name=organization.name,
        scope=content.Scope(frameworks=["soc2"], controls=[], teams=[], accounts=[]),
        period=content.Period(start=now - timedelta(days=1), end=now + timedelta(minutes=5)),
        generated_at=now,
        generated_by="auditor@acme.example",
        generator="TagSense 0.1.0",
    )


def build(organization, path: Path) -> Package:
    """A package of the organization's audit events of the last day and two other files."""
    header = _header(organization)
    with tenant_scope(organization):
        log = io.BytesIO()
        segment = write_chain_segment(log, organization.pk, header.period.start, header.period.end)
        head = chain_head(organization.pk)
        key = keys.active_key(organization)
    members = {
        "controls.csv": b"framework,control,status\nsoc2,CC6.1,pass\n",
        "findings/open.json": json.dumps([{"arn": "arn:aws:ec2:::vpc/1", "rule": "r"}]).encode(),
        AUDIT_LOG_NAME: log.getvalue(),
    }
    package = Package(organization, header, members, segment, head, key, path)
    write(package)
    return package


def write(package: Package, *, signer=None, extra: dict[str, bytes] | None = None) -> Path:
    """The ZIP of `package`, its manifest made from its members and signed by `signer` (an
    organization: its key the manifest names; default the package's organization)."""
    signer = signer or package.organization
    files = [(n, len(b), hashlib.sha256(b).hexdigest()) for n, b in package.members.items()]
    with tenant_scope(signer):
        key = keys.active_key(signer) if signer is not package.organization else package.key
        manifest = manifest_bytes(package.header, files, package.segment, package.head, key)
        signature = signature_bytes(signer, manifest)
    with zipfile.ZipFile(package.path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in {**package.members, **(extra or {})}.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", manifest)
        archive.writestr("manifest.sig", signature)
    return package.path


def rezip(
    source: Path, target: Path, change: Callable[[str, bytes], tuple[str, bytes] | None]
) -> Path:
    """`source` with each member passed through `change` (None drops it), as someone editing a
    package and zipping it again would."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            changed = change(info.filename, old.read(info.filename))
            if changed is not None:
                new.writestr(changed[0], changed[1])
    return target


def with_members(package: Package, path: Path, members: dict[str, bytes]) -> Package:
    """The same package with other members, written (manifest re-made, re-signed) at `path`."""
    changed = replace(package, members=members, path=path)
    write(changed)
    return changed


def public_key_file(organization, directory: Path, key=None) -> Path:
    with tenant_scope(organization):
        key = key or keys.active_key(organization)
    path = directory / f"{organization.slug}-{keys.url_token(key.fingerprint)[:8]}.pem"
    path.write_text(key.public_key)
    return path


def run_script(package: Path, public_key: Path, cwd: Path, *extra: str):
    """The standalone script, run as an auditor would (see BLOCKER)."""
    script = cwd / "verify_package.py"
    script.write_bytes(SCRIPT.read_bytes())
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
    return subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-I", "-c", BLOCKER, str(script), str(package), "--public-key",
         str(public_key), *extra],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )  # fmt: skip


def run_command(package: Path, *args: str) -> tuple[int, str]:
    """manage.py verify_evidence: (exit status, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_evidence", str(package), *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        err.write(str(exc))
    return code, out.getvalue() + err.getvalue()


def flip(data: bytes) -> bytes:
    """`data` with its middle byte changed (one bit)."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def both_fail(package_path, key_path, tmp_path, *expected):
    """The script with the organization's key and the command with the database's key both
    exit 1 and name each expected text."""
    script = run_script(package_path, key_path, tmp_path)
    assert script.returncode == 1, script.stdout + script.stderr
    assert "NOT INTACT" in script.stdout and "intact:" not in script.stdout
    code, text = run_command(package_path)
    assert code == 1, text
    for needle in expected:
        assert needle in script.stdout, (needle, script.stdout)
        assert needle in text, (needle, text)
    return script.stdout
