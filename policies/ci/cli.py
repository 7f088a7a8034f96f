"""tagsense-ci: send a Terraform plan or a CloudFormation template to TagSense's CI check.

    terraform show -json plan.tfplan > plan.json
    tagsense-ci check --url https://tagsense.example.com --org acme plan.json --junit tags.xml

Unchanged resources are judged too (a module that tags nothing fails until it is fixed);
--changed-only judges only created, updated and replaced ones.

Exit codes: 0 no enforced violation, 1 enforced violations, 2 usage, input or server error.
The token is read from --token or, better (it stays out of the process list), from the
TAGSENSE_TOKEN environment variable; it needs the `ci` scope.

Standard library and requests only, and no import from the rest of TagSense: this file can be
copied alone into a CI image (`python3 tagsense_ci.py check ...`). The response contract is in
docs/ci.md.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from typing import IO, Any
from urllib.parse import quote, urlsplit

import requests

from policies.ci.inputs import not_a_plan

VERSION = "1"
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # the server refuses this size and above
ENDPOINT = "/api/v1/o/{org}/policies/ci-check/"
EXIT_OK, EXIT_VIOLATIONS, EXIT_ERROR = 0, 1, 2
CONTENT_TYPES = {"terraform": "application/json", "cloudformation": "application/yaml"}


class CliError(Exception):
    """Usage, input or server problem: printed on stderr, exit code 2."""


def main(argv: list[str] | None = None, stdin: IO[bytes] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return run_check(args, stdin if stdin is not None else sys.stdin.buffer)
    except CliError as exc:
        print(f"tagsense-ci: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tagsense-ci", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check a plan or template against the tag policies")
    check.add_argument(
        "file", help="`terraform show -json` output or a CloudFormation template; - for stdin"
    )
    check.add_argument("--url", required=True, help="the portal, e.g. https://tagsense.example.com")
    check.add_argument("--org", required=True, help="organization slug")
    check.add_argument("--token", help="API token with the ci scope (default: $TAGSENSE_TOKEN)")
    check.add_argument(
        "--source",
        choices=("auto", "terraform", "cloudformation"),
        default="auto",
        help="what the file is (default: guessed from its content)",
    )
    check.add_argument(
        "--changed-only",
        action="store_true",
        help="judge only created, updated and replaced resources (default: unchanged ones too)",
    )
    check.add_argument("--junit", metavar="PATH", help="also write the result as JUnit XML")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    check.add_argument(
        "--allow-http",
        action="store_true",
        help="allow plain http to a non-loopback host (the token would travel in clear)",
    )
    return parser


def run_check(args: argparse.Namespace, stdin: IO[bytes]) -> int:
    token = args.token or os.environ.get("TAGSENSE_TOKEN", "")
    if not token:
        raise CliError("no token: pass --token or set TAGSENSE_TOKEN")
    endpoint = _endpoint(args.url, args.org, args.allow_http)
    body = _read(args.file, stdin)
    what = not_a_plan(body)
    if what:
        raise CliError(f"{args.file}: {what}")
    source = args.source if args.source != "auto" else guess_source(body, args.file)
    params = {"source": source}
    if args.changed_only:
        params["changed_only"] = "true"
    try:
        response = requests.post(
            endpoint,
            params=params,
            data=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": CONTENT_TYPES[source],
                "Accept": "application/json",
                "User-Agent": f"tagsense-ci/{VERSION}",
            },
            timeout=args.timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise CliError(f"cannot reach {endpoint}: {exc}") from None
    if response.status_code != 200:
        raise CliError(_problem(response))
    report = _report(response)
    if args.junit:
        try:
            with open(args.junit, "w", encoding="utf-8") as out:
                out.write(report["junit"])
        except OSError as exc:
            raise CliError(f"cannot write {args.junit}: {exc.strerror}") from None
    if args.format == "json":
        print(json.dumps({k: v for k, v in report.items() if k != "junit"}, indent=2))
    else:
        print(render_text(report))
    exit_code: int = report["exit_code"]  # EXIT_OK or EXIT_VIOLATIONS: _report checked it
    return exit_code


def _endpoint(url: str, org: str, allow_http: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise CliError(f"--url {url!r}: expected https://host[:port]")
    if parts.scheme == "http" and not allow_http and not _loopback(parts.hostname):
        raise CliError(f"--url {url!r}: plain http would send the token in clear; use https")
    if not org or "/" in org:
        raise CliError(f"--org {org!r}: expected an organization slug")
    return url.rstrip("/") + ENDPOINT.format(org=quote(org, safe=""))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read(path: str, stdin: IO[bytes]) -> bytes:
    """The whole file, refused locally when the server would refuse it anyway."""
    try:
        if path == "-":
            body = stdin.read(MAX_DOCUMENT_BYTES)
        else:
            if os.path.getsize(path) >= MAX_DOCUMENT_BYTES:
                raise CliError(f"{path}: {os.path.getsize(path)} bytes, the limit is under 50 MiB")
            with open(path, "rb") as f:
                body = f.read(MAX_DOCUMENT_BYTES)
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from None
    if len(body) >= MAX_DOCUMENT_BYTES:
        raise CliError(f"{path}: 50 MiB or more, refused (the limit is under 50 MiB)")
    if not body.strip():
        raise CliError(f"{path}: empty")
    return body


def guess_source(body: bytes, path: str) -> str:
    """terraform for `terraform show -json` output, else cloudformation."""
    head = body[:65536].lstrip()
    if head.startswith(b"{") and (b'"format_version"' in head or b'"resource_changes"' in head):
        return "terraform"
    if path.endswith(".json") and b'"Resources"' not in head:
        return "terraform"  # the server names the problem if it is neither
    return "cloudformation"


def _problem(response: requests.Response) -> str:
    """An RFC 9457 problem (or any error answer) as one readable message."""
    status = f"HTTP {response.status_code}"
    if 300 <= response.status_code < 400:
        return f"{status}: redirected to {response.headers.get('Location', '?')}; check --url"
    try:
        problem = response.json()
    except ValueError:
        return f"{status}: {response.text[:500].strip() or response.reason}"
    if not isinstance(problem, dict):
        return f"{status}: {str(problem)[:500]}"
    lines = [f"{status}: {problem.get('title') or response.reason}"]
    if problem.get("detail"):
        lines[0] += f": {problem['detail']}"
    for error in problem.get("errors") or ():
        if isinstance(error, dict):
            where = error.get("path") or error.get("pointer") or ""
            lines.append(f"  at {where}: {error.get('detail') or error.get('message', '')}")
    return "\n".join(lines)


def _report(response: requests.Response) -> dict[str, Any]:
    try:
        report = response.json()
    except ValueError:
        raise CliError("the server answered 200 with something that is not JSON") from None
    if not isinstance(report, dict):
        raise CliError("unexpected answer from the server: not a JSON object")
    missing = [k for k in ("exit_code", "summary", "resources", "junit") if k not in report]
    if missing:
        raise CliError(f"unexpected answer from the server: no {', '.join(missing)}")
    if report["exit_code"] not in (EXIT_OK, EXIT_VIOLATIONS):
        raise CliError(f"unexpected answer from the server: exit_code {report['exit_code']!r}")
    return report


def render_text(report: dict[str, Any]) -> str:
    s = report["summary"]
    lines = [
        f"{s['resources']} resources: {s['checked']} checked, {s['skipped']} skipped; "
        f"{s['violations']} violations, {s['enforced_violations']} enforced"
    ]
    for resource in report["resources"]:
        for v in resource.get("violations", ()):
            mark = "FAIL" if v["enforced"] else "WARN"
            key = f" [{v['key']}]" if v.get("key") else ""
            lines.append(
                f"{mark} {resource['address']}: {v['rule_id']} {v['kind']}{key} "
                f"({v['severity']}): {v['message']}"
            )
        if resource.get("checked") and (
            resource.get("tags_unknown") or resource.get("unknown_tag_keys")
        ):
            what = (
                "all tags"
                if resource.get("tags_unknown")
                else ", ".join(resource["unknown_tag_keys"])
            )
            lines.append(f"NOTE {resource['address']}: known only after apply: {what}")
    lines.append("FAILED: enforced violations" if report["exit_code"] else "PASSED")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
