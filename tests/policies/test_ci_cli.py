"""tagsense-ci against a local HTTP server that answers as the ci-check endpoint will.

The stub is the only stand-in: it runs the real parsers and report (policies/ci) with a
two-rule evaluator written here, and speaks the contract of docs/ci.md. The client is the real
one, over real HTTP.
"""

import ast
import io
import json
import os
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from policies.ci import cli
from policies.ci.cloudformation import parse_cloudformation
from policies.ci.plan import DocumentError, parse_terraform_plan
from policies.ci.report import build_response

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
PLAN = FIXTURES / "terraform" / "plan.json"
TEMPLATE = FIXTURES / "cloudformation" / "web.yaml"
TOKEN = "tsk_ci_test_token"


@dataclass
class Violation:
    rule_id: str
    severity: str
    enforced: bool
    kind: str
    message: str
    key: str | None


def evaluate(resource):
    """Owner is required (enforced); CostCenter is recommended (advisory)."""
    found = []
    if not resource.checked or resource.tags_unknown:
        return found
    known = set(resource.tags) | set(resource.unknown_tag_keys)
    if "Owner" not in known:
        found.append(Violation("owner", "high", True, "missing", "tag Owner is missing", "Owner"))
    if "CostCenter" not in known:
        found.append(
            Violation("cost", "low", False, "missing", "tag CostCenter is missing", "CostCenter")
        )
    return found


class Endpoint(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):
        pass

    def _answer(self, status, body, content_type="application/json"):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _problem(self, status, title, detail, errors=None):
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        if errors:
            body["errors"] = errors
        self._answer(status, body, "application/problem+json")

    def do_POST(self):
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Endpoint.requests.append((url.path, parse_qs(url.query), dict(self.headers), body))
        if url.path != "/api/v1/o/acme/policies/ci-check/":
            return self._problem(404, "Not Found", "No such organization.")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._problem(401, "Unauthorized", "Invalid token.")
        source = parse_qs(url.query).get("source", [""])[0]
        try:
            if source == "terraform":
                resources = parse_terraform_plan(body)
            elif source == "cloudformation":
                resources = parse_cloudformation(body)
            else:
                return self._problem(400, "Bad Request", f"unknown source {source!r}")
        except DocumentError as exc:
            return self._problem(
                400,
                "Invalid document",
                str(exc),
                [{"path": exc.path, "detail": exc.message}],
            )
        results = [(r, evaluate(r)) for r in resources]
        self._answer(200, build_response(results, ["owner", "cost"], source))


@pytest.fixture
def server():
    Endpoint.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    monkeypatch.setenv("TAGSENSE_TOKEN", TOKEN)


def run(url, *args, stdin=b""):
    return cli.main(["check", "--url", url, "--org", "acme", *args], stdin=io.BytesIO(stdin))


def test_enforced_violation_exits_1_and_writes_junit(server, tmp_path, capsys):
    junit = tmp_path / "tags.xml"
    assert run(server, str(PLAN), "--junit", str(junit)) == 1
    out = capsys.readouterr().out
    # aws_instance.web only has the default tags: no Owner.
    assert "FAIL aws_instance.web: owner missing [Owner] (high): tag Owner is missing" in out
    assert "NOTE aws_subnet.a: known only after apply: all tags" in out
    assert "aws_sqs_queue.retired" not in out  # deleted: never flagged
    assert out.rstrip().endswith("FAILED: enforced violations")

    suite = ET.parse(junit).getroot().find("testsuite")  # noqa: S314 (written by this test)
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("11", "1", "3")

    path, query, headers, body = Endpoint.requests[-1]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert query == {"source": ["terraform"]}
    assert body == PLAN.read_bytes()


def test_compliant_template_exits_0(server, capsys):
    assert run(server, str(TEMPLATE)) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.rstrip().endswith("PASSED")
    _, query, headers, _ = Endpoint.requests[-1]
    assert (query["source"], headers["Content-Type"]) == (["cloudformation"], "application/yaml")


def test_json_output_is_the_report_without_junit(server, capsys):
    assert run(server, str(PLAN), "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert "junit" not in report
    assert report["summary"]["enforced_violations"] == 1
    web = next(r for r in report["resources"] if r["address"] == "aws_instance.web")
    assert [v["rule_id"] for v in web["violations"]] == ["owner"]


def test_plan_from_stdin(server, capsys):
    assert run(server, "-", stdin=PLAN.read_bytes()) == 1
    assert Endpoint.requests[-1][1] == {"source": ["terraform"]}


def test_malformed_document_exits_2_with_the_servers_path(server, tmp_path, capsys):
    bad = tmp_path / "plan.json"
    bad.write_text('{"format_version": "1.2", "resource_changes": [}')
    assert run(server, str(bad)) == 2
    err = capsys.readouterr().err
    assert "HTTP 400: Invalid document" in err
    assert "at line 1 column 48: malformed JSON" in err


def test_wrong_token_exits_2(server, capsys, monkeypatch):
    monkeypatch.setenv("TAGSENSE_TOKEN", "nope")
    assert run(server, str(PLAN)) == 2
    assert "HTTP 401: Unauthorized: Invalid token." in capsys.readouterr().err


def test_unknown_organization_exits_2(server, capsys):
    code = cli.main(["check", "--url", server, "--org", "globex", str(PLAN)])
    assert code == 2
    assert "HTTP 404" in capsys.readouterr().err


def test_no_token(server, capsys, monkeypatch):
    monkeypatch.delenv("TAGSENSE_TOKEN")
    assert run(server, str(PLAN)) == 2
    assert "no token" in capsys.readouterr().err
    assert Endpoint.requests == []


def test_50_mib_refused_before_upload(server, tmp_path, capsys):
    big = tmp_path / "plan.json"
    with open(big, "wb") as f:
        f.truncate(50 * 1024 * 1024)
    assert run(server, str(big)) == 2
    assert "limit is under 50 MiB" in capsys.readouterr().err
    assert Endpoint.requests == []


def test_plain_http_to_a_remote_host_is_refused(capsys):
    assert run("http://tagsense.example.com", str(PLAN)) == 2
    assert "would send the token in clear" in capsys.readouterr().err


def test_unreachable_server_exits_2(capsys):

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert run(f"http://127.0.0.1:{port}", str(PLAN), "--timeout", "5") == 2
    assert "cannot reach" in capsys.readouterr().err


def test_missing_file_exits_2(server, capsys):
    assert run(server, "/nonexistent/plan.json") == 2
    assert "/nonexistent/plan.json: No such file or directory" in capsys.readouterr().err


def test_client_imports_only_the_standard_library_and_requests():
    """cli.py and every policies.ci module it imports, followed to the end (what a CI image
    with only the standard library and requests must be able to run)."""
    imported: set[str] = set()
    todo, seen = ["policies.ci.cli"], set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    name = node.module if isinstance(node, ast.ImportFrom) else alias.name
                    if name.startswith("policies.ci."):
                        todo.append(name)
                    else:
                        imported.add(name.split(".")[0])
    assert seen == {"policies.ci.cli", "policies.ci.inputs"}
    third_party = imported - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"requests"}


def test_runs_as_a_module_without_django(server, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    junit = tmp_path / "out.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "policies.ci.cli", "check", "--url", server, "--org", "acme"]
        + [str(PLAN), "--junit", str(junit)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "FAILED" in proc.stdout and junit.exists()
