"""Verify an evidence package: the checks of evidence/verify_package.py (the auditor's standalone
script, imported: one place), with the public key from a file, or else from the database.

Without --public-key, the key is the one manifest.sig names, taken only from the published
keys (active or retired) of the organization manifest.json names, and the command says which
it used; a fingerprint that is not one of them is refused. (When manifest.json cannot be read,
the key is looked up among every organization's, and verification reports the manifest.)
Exit 0 when intact, 1 naming every failure (an unknown key included), 2 when the key file
cannot be read."""

from __future__ import annotations

import json
import zipfile
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from evidence.models import EvidenceKey
from evidence.verify_package import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    UsageError,
    render,
    verify_package,
)
from tagsense.tenancy.db import all_tenants


def _named_key(package: str) -> tuple[str, str | None]:
    """(key fingerprint, organization slug) the package names: the fingerprint from
    manifest.sig, the organization from manifest.json when it can be read (None otherwise).
    Untrusted until verified: used only to choose among published keys."""
    try:
        with zipfile.ZipFile(package) as archive:
            signature = json.loads(archive.read(SIGNATURE_NAME))
            fingerprint = str(signature["key_fingerprint"])
            try:
                slug = str(json.loads(archive.read(MANIFEST_NAME))["organization"]["slug"])
            except (KeyError, TypeError, ValueError):
                slug = None  # verification names what is wrong with it
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        raise CommandError(
            f"{SIGNATURE_NAME}: unreadable, so which key signed {package} is unknown ({exc}); "
            "not verified",
            returncode=1,
        ) from None
    return fingerprint, slug


class Command(BaseCommand):
    help = "Verify an evidence package's signature, files and audit-log chain (docs/evidence.md)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("package", help="the evidence package (.zip)")
        parser.add_argument(
            "--public-key",
            metavar="FILE",
            help="the public key (PEM); without it, the organization's published key the "
            "package names, from the database",
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def _published_key(self, package: str) -> bytes:
        fingerprint, slug = _named_key(package)
        with all_tenants():
            found = EvidenceKey.objects.filter(fingerprint=fingerprint).select_related(
                "organization"
            )
            if slug is not None:
                found = found.filter(organization__slug=slug)
            key = found.first()
        if key is None:
            whose = f"{slug}'s" if slug else "any organization's"
            raise CommandError(
                f"refused: the package is signed with key {fingerprint}, which is not one of "
                f"{whose} published evidence keys",
                returncode=1,
            )
        state = f"retired {key.retired_at:%Y-%m-%d}" if key.retired_at else "active"
        self.stderr.write(
            f"Using {key.organization.slug}'s published evidence key {key.fingerprint} from the "
            f"database (created {key.created_at:%Y-%m-%d}, {state})."
        )
        return key.public_key.encode()

    def handle(self, *args: Any, **options: Any) -> None:
        package = options["package"]
        if options["public_key"]:
            try:
                pem = Path(options["public_key"]).read_bytes()
            except OSError as exc:
                raise CommandError(f"cannot read the public key: {exc}", returncode=2) from None
        else:
            pem = self._published_key(package)
        try:
            result = verify_package(package, pem)
        except UsageError as exc:
            raise CommandError(str(exc), returncode=2) from None
        text = json.dumps(result.as_dict(), indent=2) if options["json"] else render(result)
        self.stdout.write(text)
        if not result.intact:
            raise CommandError(f"{len(result.failures)} failure(s)", returncode=1)
