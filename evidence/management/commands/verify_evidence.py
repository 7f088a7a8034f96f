"""Verify an evidence package: the checks of evidence/verify_package.py (the auditor's standalone
script, imported: one place), with the public key from a file, or else from the database.

Without --public-key, the key is the one manifest.sig names, taken only from the published
keys (active or retired) of the organization the manifest names, and the command says which it
used; a fingerprint that is not one of them is refused. Exit 0 when intact, 1 naming every
failure otherwise, 2 when the key cannot be had."""

from __future__ import annotations

import json
import zipfile
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from evidence import keys
from evidence.verify_package import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    UsageError,
    render,
    verify_package,
)
from tagsense.tenancy import get_organization_model
from tagsense.tenancy.db import tenant_scope


def _named_key(package: str) -> tuple[str, str]:
    """(organization slug, key fingerprint) the package names (manifest.json, manifest.sig).
    Untrusted until verified: used only to choose among the organization's published keys."""
    try:
        with zipfile.ZipFile(package) as archive:
            manifest = json.loads(archive.read(MANIFEST_NAME))
            signature = json.loads(archive.read(SIGNATURE_NAME))
        return str(manifest["organization"]["slug"]), str(signature["key_fingerprint"])
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        raise CommandError(
            f"cannot tell which key signed {package}: {exc}; give --public-key", returncode=2
        ) from None


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
        slug, fingerprint = _named_key(package)
        organization = get_organization_model().objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"the package names organization {slug!r}: none here", returncode=2)
        with tenant_scope(organization):
            try:
                key = keys.by_fingerprint(organization, fingerprint)
            except keys.UnknownKeyError:
                raise CommandError(
                    f"refused: the package is signed with key {fingerprint}, which is not one of "
                    f"{slug}'s published evidence keys",
                    returncode=1,
                ) from None
        state = f"retired {key.retired_at:%Y-%m-%d}" if key.retired_at else "active"
        self.stderr.write(
            f"Using {slug}'s published evidence key {key.fingerprint} from the database "
            f"(created {key.created_at:%Y-%m-%d}, {state})."
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
